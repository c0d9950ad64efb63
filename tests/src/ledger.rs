//! The statements a trading day must produce, worked out by the test from the private reports the
//! participants received (`award`, `lot_sale`, `fill`) and protocol section 8's fee rules — a
//! second, independent bookkeeping to hold the server's `get_statement` and CSVs against.

use crate::{book_fee, check_fields, check_object, clock_fee, commission, fen, money, Client, Kind, REPLY_TIMEOUT};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One statement line as protocol section 8 describes it, money in fen.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    pub kind: String,
    pub reference: u64,
    pub product: String,
    pub grade: String,
    pub side: String,
    pub price: i64,
    pub units: u64,
    pub amount: i64,
    pub fee: i64,
    /// The seat that traded, on its firm's statement (protocol section 8, v1.1).
    pub seat: Option<String>,
}

impl Line {
    /// A line of a `statement` reply.
    pub fn from_wire(v: &Value) -> Line {
        Line {
            kind: v["kind"].as_str().unwrap_or_else(|| panic!("line.kind: {v}")).to_string(),
            reference: v["ref"].as_u64().unwrap_or_else(|| panic!("line.ref must be an integer: {v}")),
            product: v["product"].as_str().unwrap_or_else(|| panic!("line.product: {v}")).to_string(),
            grade: v["grade"].as_str().unwrap_or_else(|| panic!("line.grade: {v}")).to_string(),
            side: v["side"].as_str().unwrap_or_else(|| panic!("line.side: {v}")).to_string(),
            price: fen(&v["price"]),
            units: v["units"].as_u64().unwrap_or_else(|| panic!("line.units: {v}")),
            amount: fen(&v["amount"]),
            fee: fen(&v["fee"]),
            seat: match &v["seat"] {
                Value::Null => None,
                Value::String(seat) => Some(seat.clone()),
                other => panic!("line.seat must be a string or null: {other} in {v}"),
            },
        }
    }

    /// The row `huashi statements` writes for this line (`participant,day,kind,ref,…`).
    pub fn csv_row(&self, participant: &str, day: &str) -> String {
        format!(
            "{participant},{day},{},{},{},{},{},{},{},{},{}",
            self.kind,
            self.reference,
            self.product,
            self.grade,
            self.side,
            money(self.price),
            self.units,
            money(self.amount),
            money(self.fee)
        )
    }
}

/// A lot as the test consigned it.
#[derive(Clone, Debug)]
struct LotInfo {
    grower: String,
    product: String,
    grade: String,
    units_per_container: u64,
}

/// An award not voided: who bought what, for finding the grower's line again on a void.
#[derive(Clone, Debug)]
struct AwardKey {
    buyer: String,
    line: Line,
}

/// The expected statement lines of every participant for one day.
#[derive(Default, Debug)]
pub struct Ledger {
    lots: BTreeMap<u64, LotInfo>,
    /// (lot, round, buyer) → the award, for voids.
    awards: BTreeMap<(u64, u64, String), AwardKey>,
    lines: BTreeMap<String, Vec<Line>>,
    /// Trade ids already booked per side, so a trade is booked once per side.
    booked_trades: BTreeMap<(u64, String), ()>,
    /// Each seat's firm: a seat's purchases are its firm's lines, naming the seat.
    firms: BTreeMap<String, String>,
}

impl Ledger {
    /// `seat` is a seat of `firm` (registered with `firm`).
    pub fn seat(&mut self, seat: &str, firm: &str) {
        self.firms.insert(seat.into(), firm.into());
    }

    /// Whose statement a purchase by `buyer` is on, and the seat it names.
    fn account_of(&self, buyer: &str) -> (String, Option<String>) {
        match self.firms.get(buyer) {
            Some(firm) => (firm.clone(), Some(buyer.to_string())),
            None => (buyer.to_string(), None),
        }
    }

    /// A `presale_bought` reply to `buyer`: a presale purchase line and the grower's sale line.
    pub fn presale(&mut self, buyer: &str, bought: &Value) {
        self.sale("presale", buyer, bought);
    }

    /// A clock award or a presale purchase (`kind`) as its report to `buyer` says: checked against
    /// the fee rules, a purchase line on the buyer's statement (its firm's for a seat, naming the
    /// seat) and a sale line on the grower's. Returns the purchase line.
    fn sale(&mut self, kind: &str, buyer: &str, report: &Value) -> Line {
        let lot_id = report["lot_id"].as_u64().expect("lot_id");
        let lot =
            self.lots.get(&lot_id).unwrap_or_else(|| panic!("a sale of a lot nobody consigned: {report}")).clone();
        let containers = report["containers"].as_u64().expect("containers");
        let price = fen(&report["price"]);
        let units = containers * lot.units_per_container;
        assert_eq!(report["units"], units, "units = containers × units_per_container: {report}");
        let amount = price * units as i64;
        assert_eq!(fen(&report["amount"]), amount, "amount = price × units: {report}");
        assert_eq!(fen(&report["fee"]), clock_fee(containers), "fee: 0.50 a container: {report}");
        let (account, seat) = self.account_of(buyer);
        let line = |side: &str, fee: i64, seat: Option<String>| Line {
            kind: kind.into(),
            reference: lot_id,
            product: lot.product.clone(),
            grade: lot.grade.clone(),
            side: side.into(),
            price,
            units,
            amount,
            fee,
            seat,
        };
        let bought = line("buy", clock_fee(containers), seat);
        self.lines.entry(account).or_default().push(bought.clone());
        self.lines.entry(lot.grower.clone()).or_default().push(line("sell", commission(amount), None));
        bought
    }

    /// Remembers a consigned lot (the `lot` object of `lot_consigned`).
    pub fn consigned(&mut self, lot: &Value) {
        self.lots.insert(
            lot["lot_id"].as_u64().expect("lot_id"),
            LotInfo {
                grower: lot["grower"].as_str().expect("grower").into(),
                product: lot["product"].as_str().expect("product").into(),
                grade: lot["grade"].as_str().expect("grade").into(),
                units_per_container: lot["units_per_container"].as_u64().expect("units_per_container"),
            },
        );
    }

    /// An `award` report to `buyer`: a purchase line for the buyer and a sale line for the grower,
    /// both checked against the fee rules.
    pub fn award(&mut self, buyer: &str, award: &Value) {
        let bought = self.sale("clock", buyer, award);
        let (lot_id, round) =
            (award["lot_id"].as_u64().expect("award.lot_id"), award["round"].as_u64().expect("award.round"));
        let (account, _) = self.account_of(buyer);
        self.awards.insert((lot_id, round, buyer.into()), AwardKey { buyer: account, line: bought });
    }

    /// `void_award` of `buyer`'s award in `round`: both of its lines leave the statements.
    pub fn voided(&mut self, lot_id: u64, round: u64, buyer: &str) {
        let key = self
            .awards
            .remove(&(lot_id, round, buyer.to_string()))
            .unwrap_or_else(|| panic!("voiding an award the test never saw: lot {lot_id} round {round} {buyer}"));
        let grower = self.lots[&lot_id].grower.clone();
        remove_one(self.lines.get_mut(&key.buyer).expect("buyer lines"), &key.line);
        let sale = Line { side: "sell".into(), fee: commission(key.line.amount), seat: None, ..key.line };
        remove_one(self.lines.get_mut(&grower).expect("grower lines"), &sale);
    }

    /// A `fill` report to `who` on the book of `product` (book trades count under grade `A1`).
    pub fn fill(&mut self, who: &str, product: &str, fill: &Value) {
        check_fields(fill, "fill", crate::FILL_FIELDS);
        let trade_id = fill["trade_id"].as_u64().unwrap_or_else(|| panic!("fill.trade_id must be an integer: {fill}"));
        let side = fill["side"].as_str().expect("fill.side").to_string();
        assert!(
            self.booked_trades.insert((trade_id, side.clone()), ()).is_none(),
            "trade {trade_id} filled twice on the {side} side: {fill}"
        );
        let price = fen(&fill["price"]);
        let units = fill["quantity"].as_u64().expect("fill.quantity");
        let amount = price * units as i64;
        let fee = if side == "buy" { book_fee(amount) } else { commission(amount) };
        let (account, seat) = if side == "buy" { self.account_of(who) } else { (who.to_string(), None) };
        self.lines.entry(account).or_default().push(Line {
            kind: "book".into(),
            reference: trade_id,
            product: product.into(),
            grade: "A1".into(),
            side,
            price,
            units,
            amount,
            fee,
            seat,
        });
    }

    /// Everyone with a line today.
    pub fn participants(&self) -> Vec<String> {
        self.lines.iter().filter(|(_, l)| !l.is_empty()).map(|(p, _)| p.clone()).collect()
    }

    /// `participant`'s expected lines, sorted.
    pub fn lines_of(&self, participant: &str) -> Vec<Line> {
        let mut lines = self.lines.get(participant).cloned().unwrap_or_default();
        lines.sort();
        lines
    }

    /// The market's income: every buyer fee and commission.
    pub fn market_fees(&self) -> i64 {
        self.lines.values().flatten().map(|l| l.fee).sum()
    }

    /// Trades of the day: clock awards (one line each on the buy side) and book trades.
    pub fn trades(&self) -> u64 {
        self.lines.values().flatten().filter(|l| l.side == "buy").count() as u64
    }

    /// Turnover: the amounts of all trades, counted once (on the buy side).
    pub fn turnover(&self) -> i64 {
        self.lines.values().flatten().filter(|l| l.side == "buy").map(|l| l.amount).sum()
    }

    /// Checks a `statement` reply against the expected lines and protocol section 8's totals;
    /// returns its `net` in fen.
    pub fn check_statement(&self, participant: &str, day: &str, statement: &Value) -> i64 {
        check_statement_shape(statement);
        assert_eq!(statement["participant"], participant, "{statement}");
        assert_eq!(statement["day"], day, "{statement}");
        let mut got: Vec<Line> = statement["lines"].as_array().unwrap().iter().map(Line::from_wire).collect();
        got.sort();
        let want = self.lines_of(participant);
        assert_eq!(got, want, "{participant}'s statement for {day}: lines (left: server, right: the test's books)");
        let sum = |side: &str, f: fn(&Line) -> i64| -> i64 { got.iter().filter(|l| l.side == side).map(f).sum() };
        let (bought, fees) = (sum("buy", |l| l.amount), sum("buy", |l| l.fee));
        let (sold, commission) = (sum("sell", |l| l.amount), sum("sell", |l| l.fee));
        assert_eq!(fen(&statement["total_bought"]), bought, "total_bought = Σ purchase amounts: {statement}");
        assert_eq!(fen(&statement["fees"]), fees, "fees = Σ purchase fees: {statement}");
        assert_eq!(fen(&statement["total_sold"]), sold, "total_sold = Σ sale amounts: {statement}");
        assert_eq!(fen(&statement["commission"]), commission, "commission = Σ sale fees: {statement}");
        let net = sold - commission - bought - fees;
        assert_eq!(fen(&statement["net"]), net, "net = total_sold − commission − total_bought − fees: {statement}");
        net
    }
}

/// Checks the wire shape of a `statement` reply and of each of its lines (protocol section 8).
pub fn check_statement_shape(s: &Value) {
    check_fields(
        s,
        "statement",
        &[
            ("participant", Kind::Str),
            ("day", Kind::Day),
            ("lines", Kind::Arr),
            ("total_bought", Kind::Money),
            ("total_sold", Kind::Money),
            ("fees", Kind::Money),
            ("commission", Kind::Money),
            ("net", Kind::Money),
        ],
    );
    for line in s["lines"].as_array().unwrap() {
        check_object(
            line,
            "statement line",
            &[
                ("kind", Kind::Str),
                ("ref", Kind::Int),
                ("product", Kind::Str),
                ("grade", Kind::Str),
                ("side", Kind::Str),
                ("price", Kind::Money),
                ("units", Kind::Int),
                ("amount", Kind::Money),
                ("fee", Kind::Money),
            ],
        );
    }
}

fn remove_one(lines: &mut Vec<Line>, line: &Line) {
    let at = lines.iter().position(|l| l == line).unwrap_or_else(|| panic!("no line {line:?} in {lines:?}"));
    lines.remove(at);
}

/// `get_statement {day, participant?}` over `c`; panics on anything but a `statement`.
pub async fn get_statement(c: &mut Client, day: &str, participant: Option<&str>) -> Value {
    let mut msg = json!({"type": "get_statement", "day": day});
    if let Some(p) = participant {
        msg["participant"] = json!(p);
    }
    let reply = c.request_timeout(msg, REPLY_TIMEOUT).await.unwrap_or_else(|e| panic!("get_statement {day}: {e}"));
    assert_eq!(reply["type"], "statement", "get_statement {day} {participant:?}: {reply}");
    reply
}
