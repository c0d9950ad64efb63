//! Who takes part in the demonstration market: growers from Yunnan and the Shanghai districts,
//! buyers from wholesale, retail and hospitality, a buyer firm that buys through several seats
//! (protocol section 4), and a seat kept free for a visitor in the browser. Names and ids are
//! fixed so a second run finds the same participants.

/// A grower and what it grows.
pub struct GrowerSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub origin: &'static str,
    /// The production base its lots come from (master data `base`).
    pub base: &'static str,
    /// Its harvest batches are numbered `<batch>-<MMDD>-<n>`.
    pub batch: &'static str,
    /// Product codes, main product first.
    pub products: &'static [&'static str],
}

pub const GROWERS: [GrowerSpec; 10] = [
    GrowerSpec {
        id: "g-dounan-rose",
        name: "Dounan Rose Co-op",
        origin: "Dounan, Kunming, Yunnan",
        base: "Dounan, Yunnan",
        batch: "DN",
        products: &["ROSE"],
    },
    GrowerSpec {
        id: "g-chongming-lily",
        name: "Chongming Lily Farm",
        origin: "Chongming Island, Shanghai",
        base: "Chongming",
        batch: "CM",
        products: &["LILY", "TULIP"],
    },
    GrowerSpec {
        id: "g-songjiang-orchid",
        name: "Songjiang Orchid Nursery",
        origin: "Songjiang, Shanghai",
        base: "Songjiang",
        batch: "SJ",
        products: &["PHALAENOPSIS", "ANTHURIUM"],
    },
    GrowerSpec {
        id: "g-pudong-greenhouse",
        name: "Pudong Greenhouse Collective",
        origin: "Pudong, Shanghai",
        base: "Pudong",
        batch: "PD",
        products: &["GERBERA", "CARNATION"],
    },
    GrowerSpec {
        id: "g-jinning-flowers",
        name: "Jinning Flower Growers",
        origin: "Jinning, Kunming, Yunnan",
        base: "Jinning, Yunnan",
        batch: "JN",
        products: &["ROSE", "CARNATION"],
    },
    GrowerSpec {
        id: "g-qingpu-garden",
        name: "Qingpu Chrysanthemum Garden",
        origin: "Qingpu, Shanghai",
        base: "Qingpu",
        batch: "QP",
        products: &["CHRYSANTHEMUM", "GERBERA"],
    },
    GrowerSpec {
        id: "g-fengxian-foliage",
        name: "Fengxian Foliage Farm",
        origin: "Fengxian, Shanghai",
        base: "Fengxian",
        batch: "FX",
        products: &["EUCALYPTUS"],
    },
    GrowerSpec {
        id: "g-chenggong-carnation",
        name: "Chenggong Carnation Co.",
        origin: "Chenggong, Kunming, Yunnan",
        base: "Chenggong, Yunnan",
        batch: "CG",
        products: &["CARNATION", "ROSE"],
    },
    GrowerSpec {
        id: "g-jiading-pots",
        name: "Jiading Potted Plants",
        origin: "Jiading, Shanghai",
        base: "Jiading",
        batch: "JD",
        products: &["ANTHURIUM", "PHALAENOPSIS"],
    },
    GrowerSpec {
        id: "g-yuxi-highland",
        name: "Yuxi Highland Roses",
        origin: "Yuxi, Yunnan",
        base: "Yuxi, Yunnan",
        batch: "YX",
        products: &["ROSE", "LILY"],
    },
];

/// How a buyer buys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuyerKind {
    /// Big volumes of everything, for resale: values lots a little under the market, trades on
    /// the books.
    Wholesaler,
    /// A few containers of a few products, pays up for quality.
    Florist,
    /// Roses, lilies, orchids and greenery for lobbies and banquets; leaves standing bids.
    HotelChain,
    /// Events and supermarkets: medium volumes of cheap cut flowers.
    Retailer,
}

pub struct BuyerSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: BuyerKind,
    /// Credit limit, whole CNY; for a seat, its share of the firm's credit it budgets with.
    pub credit_cny: i64,
    /// A seat's firm, which it buys for and on whose credit.
    pub firm: Option<&'static FirmSpec>,
    /// A seat's own cap on a day's purchases, whole CNY (its `daily_limit`).
    pub daily_limit_cny: i64,
}

const fn buyer(id: &'static str, name: &'static str, kind: BuyerKind, credit_cny: i64) -> BuyerSpec {
    BuyerSpec { id, name, kind, credit_cny, firm: None, daily_limit_cny: 0 }
}

/// A buyer firm: a participant with a credit line that its seats buy on; it does not bid itself.
pub struct FirmSpec {
    pub id: &'static str,
    pub name: &'static str,
    /// Credit limit, whole CNY, shared by all its seats.
    pub credit_cny: i64,
}

pub const FIRMS: [FirmSpec; 1] = [FirmSpec { id: "b-lotus-group", name: "Lotus Flower Group", credit_cny: 120_000 }];

const fn seat(id: &'static str, name: &'static str, kind: BuyerKind, daily_limit_cny: i64) -> BuyerSpec {
    let firm = &FIRMS[0];
    BuyerSpec { id, name, kind, credit_cny: firm.credit_cny / 3, firm: Some(firm), daily_limit_cny }
}

/// The firm's buying seats. The third is a trainee's, with a small daily limit it soon reaches:
/// the market refuses its purchases beyond it while the other seats buy on.
pub const SEATS: [BuyerSpec; 3] = [
    seat("b-lotus-seat-1", "Lotus Flower Group, seat 1", Wholesaler, 50_000),
    seat("b-lotus-seat-2", "Lotus Flower Group, seat 2", Retailer, 30_000),
    seat("b-lotus-seat-3", "Lotus Flower Group, trainee seat", Florist, 300),
];

use BuyerKind::{Florist, HotelChain, Retailer, Wholesaler};

pub const BUYERS: [BuyerSpec; 30] = [
    buyer("b-caojiadu-wholesale", "Caojiadu Flower Wholesale", Wholesaler, 200_000),
    buyer("b-hongqiao-traders", "Hongqiao Flower Traders", Wholesaler, 180_000),
    buyer("b-dounan-export", "Dounan Export Trading", Wholesaler, 200_000),
    buyer("b-minhang-distrib", "Minhang Flower Distribution", Wholesaler, 150_000),
    buyer("b-yangpu-wholesale", "Yangpu Wholesale Blooms", Wholesaler, 120_000),
    buyer("b-huangpu-river", "Huangpu River Flowers", Wholesaler, 160_000),
    buyer("b-suzhou-creek", "Suzhou Creek Trading", Wholesaler, 100_000),
    buyer("b-hangzhou-bay", "Hangzhou Bay Florals", Wholesaler, 140_000),
    buyer("b-xujiahui-florist", "Xujiahui Florist", Florist, 30_000),
    buyer("b-tianzifang-petals", "Tianzifang Petals", Florist, 20_000),
    buyer("b-jingan-blossom", "Jing'an Blossom Studio", Florist, 25_000),
    buyer("b-xintiandi-flowers", "Xintiandi Flower Bar", Florist, 35_000),
    buyer("b-wukang-road", "Wukang Road Florals", Florist, 20_000),
    buyer("b-french-concession", "Former Concession Florist", Florist, 25_000),
    buyer("b-bund-bouquets", "Bund Bouquets", Florist, 40_000),
    buyer("b-lujiazui-blooms", "Lujiazui Blooms", Florist, 30_000),
    buyer("b-nanjing-road", "Nanjing Road Flower Shop", Florist, 20_000),
    buyer("b-yuyuan-garden", "Yuyuan Garden Florist", Florist, 25_000),
    buyer("b-bund-grand-hotels", "Bund Grand Hotels", HotelChain, 120_000),
    buyer("b-pearl-tower-hotels", "Pearl Tower Hotel Group", HotelChain, 90_000),
    buyer("b-west-lake-resorts", "West Lake Resorts", HotelChain, 80_000),
    buyer("b-hongqiao-business", "Hongqiao Business Hotels", HotelChain, 60_000),
    buyer("b-peace-banquets", "Peace Hall Banquets", HotelChain, 70_000),
    buyer("b-golden-wedding", "Golden Wedding Events", Retailer, 60_000),
    buyer("b-freshmart", "FreshMart Supermarkets", Retailer, 100_000),
    buyer("b-huamart", "Huamart Hypermarkets", Retailer, 90_000),
    buyer("b-petal-post", "Petal Post Online", Retailer, 70_000),
    buyer("b-lantern-events", "Lantern Festival Events", Retailer, 50_000),
    buyer("b-greenline-offices", "Greenline Office Plants", Retailer, 40_000),
    buyer("b-expo-decor", "Expo Decor Studio", Retailer, 50_000),
];

/// The buyer nobody simulates: for a person in the browser.
pub const VISITOR: BuyerSpec = buyer("b-visitor", "Visitor (you, in the browser)", Florist, 50_000);

impl BuyerKind {
    /// Products this kind of buyer buys at the clock.
    pub fn products(self) -> &'static [&'static str] {
        match self {
            Wholesaler => &[
                "ROSE",
                "CARNATION",
                "LILY",
                "CHRYSANTHEMUM",
                "GERBERA",
                "TULIP",
                "PHALAENOPSIS",
                "ANTHURIUM",
                "EUCALYPTUS",
            ],
            Florist => &["ROSE", "LILY", "GERBERA", "TULIP", "EUCALYPTUS", "PHALAENOPSIS"],
            HotelChain => &["ROSE", "LILY", "PHALAENOPSIS", "ANTHURIUM", "EUCALYPTUS"],
            Retailer => &["ROSE", "CARNATION", "CHRYSANTHEMUM", "GERBERA", "TULIP", "PHALAENOPSIS"],
        }
    }

    /// How many of a product's best grades this kind of buyer takes (the top of each scale).
    pub fn grades_taken(self) -> usize {
        match self {
            Wholesaler | Retailer => usize::MAX,
            Florist => 2,
            HotelChain => 1,
        }
    }

    /// The range of a buyer's private value for a cell, as a share of the day's fair price.
    pub fn value_range(self) -> (f64, f64) {
        match self {
            Wholesaler => (0.78, 1.08),
            Florist => (0.9, 1.2),
            HotelChain => (0.88, 1.12),
            Retailer => (0.75, 1.05),
        }
    }

    /// Containers wanted a day, per cell, in a morning of 60 lots.
    pub fn demand_range(self) -> (u32, u32) {
        match self {
            Wholesaler => (6, 16),
            Florist => (1, 3),
            HotelChain => (2, 5),
            Retailer => (3, 8),
        }
    }

    /// Containers asked for in one press at the clock.
    pub fn press_range(self) -> (u32, u32) {
        match self {
            Wholesaler => (3, 8),
            Florist => (1, 2),
            HotelChain => (1, 3),
            Retailer => (2, 5),
        }
    }

    /// Whether the buyer leaves standing bids instead of watching the clocks.
    pub fn leaves_standing_bids(self) -> bool {
        self == HotelChain
    }

    /// Whether the buyer trades on the books.
    pub fn trades_books(self) -> bool {
        matches!(self, Wholesaler | HotelChain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn valid_id(id: &str) -> bool {
        (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn ids_are_protocol_codes_and_unique() {
        let mut seen = BTreeSet::new();
        let ids = GROWERS
            .iter()
            .map(|g| g.id)
            .chain(BUYERS.iter().chain(&SEATS).map(|b| b.id))
            .chain(FIRMS.iter().map(|f| f.id))
            .chain([VISITOR.id]);
        for id in ids {
            assert!(valid_id(id), "{id}");
            assert!(seen.insert(id), "{id} twice");
        }
        for g in &GROWERS {
            for p in g.products {
                assert!(crate::demo::products::product(p).is_some(), "{p}");
            }
        }
    }
}
