//! Reference data: products (what is grown) and instruments (what trades on a book), with the
//! catalogue every new data directory starts with (protocol section 4).

use crate::types::{Code, Fen};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    CutFlower,
    PottedPlant,
    Foliage,
    Other,
}

impl Category {
    pub const ALL: [Category; 4] = [Category::CutFlower, Category::PottedPlant, Category::Foliage, Category::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::CutFlower => "cut_flower",
            Category::PottedPlant => "potted_plant",
            Category::Foliage => "foliage",
            Category::Other => "other",
        }
    }
    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Unit {
    Stem,
    Pot,
    Bunch,
}

impl Unit {
    pub const ALL: [Unit; 3] = [Unit::Stem, Unit::Pot, Unit::Bunch];
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Stem => "stem",
            Unit::Pot => "pot",
            Unit::Bunch => "bunch",
        }
    }
    pub fn parse(text: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

/// Quality grade of a lot: a short code on its product's grade scale (protocol section 4), e.g.
/// `A1`. Book trades count under the best grade of the product's scale in the index.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grade(Code);

impl Grade {
    /// A grade code is at most this long (`[A-Za-z0-9_-]`).
    pub const BYTES_MAX: usize = 8;
    /// Accepts a grade code (any scale's); whether it is on a product's scale is the core's check.
    pub fn parse(text: &str) -> Option<Grade> {
        Code::parse(text, Grade::BYTES_MAX).map(Grade)
    }
    /// For literals in code and tests; panics on an invalid code.
    pub fn from_static(text: &'static str) -> Grade {
        Grade::parse(text).unwrap_or_else(|| panic!("invalid grade {text:?}"))
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub const A1: Grade = Grade(Code::literal("A1"));
    pub const A2: Grade = Grade(Code::literal("A2"));
    pub const B1: Grade = Grade(Code::literal("B1"));
    /// The scale a product gets when `define_product` names none (protocol section 4).
    pub const DEFAULT_SCALE: [Grade; 3] = [Grade::A1, Grade::A2, Grade::B1];
}

impl std::fmt::Debug for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most grades a scale may have.
pub const GRADES_MAX: usize = 16;

/// How a lot is packed (protocol section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Packaging {
    Bucket,
    Box,
    Tray,
    Cart,
}

impl Packaging {
    pub const ALL: [Packaging; 4] = [Packaging::Bucket, Packaging::Box, Packaging::Tray, Packaging::Cart];
    pub fn as_str(self) -> &'static str {
        match self {
            Packaging::Bucket => "bucket",
            Packaging::Box => "box",
            Packaging::Tray => "tray",
            Packaging::Cart => "cart",
        }
    }
    pub fn parse(text: &str) -> Option<Packaging> {
        Packaging::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub code: Code,
    pub name: String,
    pub category: Category,
    pub unit: Unit,
    /// The grade scale, best first; never empty.
    pub grades: Vec<Grade>,
    /// The product's number in the order products were defined (0 for the first): a small,
    /// fixed index for tables that must not look codes up per lot (planning).
    pub number: u16,
}

impl Product {
    /// Where `grade` stands on the scale (0 is the best), if it is on it.
    pub fn grade_rank(&self, grade: Grade) -> Option<usize> {
        self.grades.iter().position(|g| *g == grade)
    }
    /// The best grade of the scale: book trades count under it in the index.
    pub fn best_grade(&self) -> Grade {
        self.grades[0]
    }
}

/// The static part of an instrument; its live book is kept beside it in the market.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub symbol: Code,
    pub product: Code,
    pub tick_size: Fen,
    pub price_band_pct: u32,
}

/// The products a new data directory starts with: (code, name, category, unit, grade scale).
/// The scales follow the hall's practice: cut flowers sorted finely by stem length and quality
/// (A1 the longest, cleanest stems), pot plants and foliage by a shorter scale.
pub const DEFAULT_PRODUCTS: [(&str, &str, Category, Unit, &[&str]); 9] = [
    ("ROSE", "Rose", Category::CutFlower, Unit::Stem, &["A1", "A2", "B1", "B2", "C1"]),
    ("CARNATION", "Carnation", Category::CutFlower, Unit::Stem, &["A1", "A2", "B1", "B2"]),
    ("LILY", "Lily", Category::CutFlower, Unit::Stem, &["A1", "A2", "B1", "B2"]),
    ("CHRYSANTHEMUM", "Chrysanthemum", Category::CutFlower, Unit::Stem, &["A1", "A2", "B1", "B2"]),
    ("GERBERA", "Gerbera", Category::CutFlower, Unit::Stem, &["A1", "A2", "B1"]),
    ("TULIP", "Tulip", Category::CutFlower, Unit::Stem, &["A1", "A2", "B1"]),
    ("PHALAENOPSIS", "Moth orchid", Category::PottedPlant, Unit::Pot, &["A1", "A2", "B1"]),
    ("ANTHURIUM", "Anthurium", Category::PottedPlant, Unit::Pot, &["A1", "A2", "B1"]),
    ("EUCALYPTUS", "Eucalyptus", Category::Foliage, Unit::Bunch, &["A1", "A2", "B1"]),
];

/// The instruments a new data directory starts with: (symbol, product); tick 0.01, band 20 %.
pub const DEFAULT_INSTRUMENTS: [(&str, &str); 3] =
    [("ROSE-A", "ROSE"), ("LILY-A", "LILY"), ("PHALAENOPSIS-A", "PHALAENOPSIS")];
pub const DEFAULT_TICK: Fen = Fen(1);
pub const DEFAULT_BAND_PCT: u32 = 20;
