//! The simulation's sense of price: each product's "mood" (a multiplier on its price level that
//! wanders from day to day, so the index has something to measure), the fair price of a cell
//! today, and what cells actually traded at — today's running VWAP from the feed's awards and
//! trades, and the last settled day's, which growers set reserves from and the auctioneer sets
//! start prices from. Kept in `demo-prices.json` so a second run continues the market's prices.

use super::money::Fen;
use super::products::{grade_factor, product, Cell, PRODUCTS};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PRICES_FILE: &str = "demo-prices.json";

/// How strongly a product's mood is pulled back to 1 each day, and how much it moves.
const MOOD_PERSISTENCE: f64 = 0.85;
const MOOD_PRODUCT_SIGMA: f64 = 0.05;
const MOOD_MARKET_SIGMA: f64 = 0.025;

/// Turnover and units of one cell.
#[derive(Clone, Copy, Debug, Default)]
struct Volume {
    amount: i64,
    units: u64,
}

pub struct PriceBoard {
    path: PathBuf,
    /// ln(mood) per product code.
    log_mood: BTreeMap<&'static str, f64>,
    /// VWAP per unit of each cell on the last settled day it traded.
    recent: BTreeMap<Cell, Fen>,
    today: BTreeMap<Cell, Volume>,
    /// The last trade price of each book, the reference of its price band.
    last_trade: BTreeMap<String, Fen>,
}

impl PriceBoard {
    /// Reads `demo-prices.json` if a previous run left one.
    pub fn load(data_dir: &Path) -> PriceBoard {
        let path = data_dir.join(PRICES_FILE);
        let mut board = PriceBoard {
            path,
            log_mood: PRODUCTS.iter().map(|p| (p.code, 0.0)).collect(),
            recent: BTreeMap::new(),
            today: BTreeMap::new(),
            last_trade: BTreeMap::new(),
        };
        let Ok(text) = std::fs::read_to_string(&board.path) else { return board };
        let Ok(saved) = serde_json::from_str::<Value>(&text) else {
            tracing::warn!(path = %board.path.display(), "ignoring a prices file that is not JSON");
            return board;
        };
        for (code, mood) in saved["moods"].as_object().into_iter().flatten() {
            if let (Some(p), Some(mood)) = (product(code), mood.as_f64()) {
                if mood > 0.0 {
                    board.log_mood.insert(p.code, mood.ln());
                }
            }
        }
        for (key, price) in saved["recent"].as_object().into_iter().flatten() {
            let cell = key.split_once('/').and_then(|(p, g)| super::products::cell(p, g));
            if let (Some(cell), Some(price)) = (cell, Fen::of(price)) {
                board.recent.insert(cell, price);
            }
        }
        for (symbol, price) in saved["last_trade"].as_object().into_iter().flatten() {
            if let Some(price) = Fen::of(price) {
                board.last_trade.insert(symbol.clone(), price);
            }
        }
        board
    }

    pub fn save(&self) {
        let moods: Map<String, Value> = self.log_mood.iter().map(|(c, m)| (c.to_string(), json!(m.exp()))).collect();
        let recent: Map<String, Value> =
            self.recent.iter().map(|((p, g), price)| (format!("{p}/{g}"), price.json())).collect();
        let last_trade: Map<String, Value> = self.last_trade.iter().map(|(s, p)| (s.clone(), p.json())).collect();
        let text = json!({"moods": moods, "recent": recent, "last_trade": last_trade}).to_string();
        let temporary = self.path.with_extension("json.tmp");
        let written = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(error) = written {
            tracing::warn!(path = %self.path.display(), %error, "cannot save the demo's prices");
        }
    }

    /// A new day: every product's mood takes a step (a shared market move plus its own).
    pub fn new_day(&mut self, rng: &mut impl Rng) {
        let market = normal(rng) * MOOD_MARKET_SIGMA;
        for log_mood in self.log_mood.values_mut() {
            *log_mood = *log_mood * MOOD_PERSISTENCE + market + normal(rng) * MOOD_PRODUCT_SIGMA;
        }
        self.today.clear();
    }

    /// What a cell is worth to the market today, CNY per unit (before each buyer's own view).
    pub fn fair(&self, cell: Cell) -> f64 {
        let Some(p) = product(cell.0) else { return 1.0 };
        let mood = self.log_mood.get(p.code).copied().unwrap_or(0.0).exp();
        p.level_fen as f64 / 100.0 * grade_factor(p, cell.1) * mood
    }

    /// The cell's VWAP on the last settled day it traded.
    pub fn recent(&self, cell: Cell) -> Option<Fen> {
        self.recent.get(&cell).copied()
    }

    /// Adopts a VWAP published by the market (`/api/market`) for a cell the demo has none for.
    pub fn learn_recent(&mut self, cell: Cell, vwap: Fen) {
        self.recent.entry(cell).or_insert(vwap);
    }

    /// A sale at the clock or on a book.
    pub fn record(&mut self, cell: Cell, price: Fen, units: u64) {
        let volume = self.today.entry(cell).or_default();
        volume.amount += price.0 * units as i64;
        volume.units += units;
    }

    pub fn record_trade(&mut self, symbol: &str, price: Fen) {
        self.last_trade.insert(symbol.to_string(), price);
    }

    pub fn last_trade(&self, symbol: &str) -> Option<Fen> {
        self.last_trade.get(symbol).copied()
    }

    /// Today's VWAP of a cell so far.
    pub fn vwap_today(&self, cell: Cell) -> Option<Fen> {
        self.today.get(&cell).filter(|v| v.units > 0).map(|v| Fen((v.amount as f64 / v.units as f64).round() as i64))
    }

    /// The day is settled: today's VWAPs become the recent prices.
    pub fn settle_day(&mut self) {
        let cells: Vec<Cell> = self.today.keys().copied().collect();
        for cell in cells {
            if let Some(vwap) = self.vwap_today(cell) {
                self.recent.insert(cell, vwap);
            }
        }
        self.today.clear();
        self.save();
    }
}

/// A standard normal draw (Box–Muller); the simulation's only use of floating point randomness.
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moods_wander_but_stay_near_the_price_level() {
        let dir = std::env::temp_dir().join(format!("huashi-demo-prices-{}", std::process::id()));
        let mut board = PriceBoard::load(&dir);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let rose = ("ROSE", "A1");
        let first = board.fair(rose);
        for _ in 0..200 {
            board.new_day(&mut rng);
            let fair = board.fair(rose);
            assert!(fair > first * 0.5 && fair < first * 2.0, "{fair}");
        }
    }

    #[test]
    fn the_days_vwap_becomes_the_recent_price() {
        let dir = tempdir();
        let mut board = PriceBoard::load(&dir);
        board.record(("LILY", "A2"), Fen(500), 30);
        board.record(("LILY", "A2"), Fen(600), 10);
        assert_eq!(board.vwap_today(("LILY", "A2")), Some(Fen(525)));
        board.settle_day();
        assert_eq!(board.recent(("LILY", "A2")), Some(Fen(525)));
        let again = PriceBoard::load(&dir);
        assert_eq!(again.recent(("LILY", "A2")), Some(Fen(525)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("huashi-demo-prices-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
