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

/// Quality grade of a lot. Book trades count under `A1` in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grade {
    A1,
    A2,
    B1,
}

impl Grade {
    pub const ALL: [Grade; 3] = [Grade::A1, Grade::A2, Grade::B1];
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A1 => "A1",
            Grade::A2 => "A2",
            Grade::B1 => "B1",
        }
    }
    pub fn parse(text: &str) -> Option<Grade> {
        Grade::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub code: Code,
    pub name: String,
    pub category: Category,
    pub unit: Unit,
}

/// The static part of an instrument; its live book is kept beside it in the market.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub symbol: Code,
    pub product: Code,
    pub tick_size: Fen,
    pub price_band_pct: u32,
}

/// The products a new data directory starts with: (code, name, category, unit).
pub const DEFAULT_PRODUCTS: [(&str, &str, Category, Unit); 9] = [
    ("ROSE", "Rose", Category::CutFlower, Unit::Stem),
    ("CARNATION", "Carnation", Category::CutFlower, Unit::Stem),
    ("LILY", "Lily", Category::CutFlower, Unit::Stem),
    ("CHRYSANTHEMUM", "Chrysanthemum", Category::CutFlower, Unit::Stem),
    ("GERBERA", "Gerbera", Category::CutFlower, Unit::Stem),
    ("TULIP", "Tulip", Category::CutFlower, Unit::Stem),
    ("PHALAENOPSIS", "Moth orchid", Category::PottedPlant, Unit::Pot),
    ("ANTHURIUM", "Anthurium", Category::PottedPlant, Unit::Pot),
    ("EUCALYPTUS", "Eucalyptus", Category::Foliage, Unit::Bunch),
];

/// The instruments a new data directory starts with: (symbol, product); tick 0.01, band 20 %.
pub const DEFAULT_INSTRUMENTS: [(&str, &str); 3] =
    [("ROSE-A", "ROSE"), ("LILY-A", "LILY"), ("PHALAENOPSIS-A", "PHALAENOPSIS")];
pub const DEFAULT_TICK: Fen = Fen(1);
pub const DEFAULT_BAND_PCT: u32 = 20;
