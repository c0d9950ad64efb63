//! The goods after the sale (protocol §12) as clearing keeps them: every dispatch line with its
//! path through the cold chain, and every lot's public trace — its lot object, its grower, its
//! sales (buyers anonymous). Built from the core's events after the core: the core keeps only the
//! lines it still decides about, the history is here.
//!
//! A trading day's goods stay in memory while the core may still change them: today's, and the
//! previous trading day's (a line may move, and be complained about, until the end of the next
//! trading day). At the second `end_of_day` after it, a day leaves memory for the archive
//! (`take_leaving`, the `goods_*` trees). So that the archive answers for a settled day at once
//! (delivery notes are printed in the evening), the day is also written as it stands when it
//! settles, and written again, final, when it leaves.
//!
//! The lot object follows the core: full copies whenever an event carries the lot
//! (`LotConsigned`, `LotOnClock`, `SupplyLine`), and the core's own transitions for the events
//! that carry only what changed (assignments, sales, voids, presale offers, the end of a lot, the
//! end of the day).

use crate::trades::TradeKind;
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::dispatch::{Centi, DispatchRef, DispatchStatus, DispatchView};
use huashi_engine::core::lots::{Lot, LotStatus, PresaleOffer};
use huashi_engine::event::{Award, PresaleSale, Trade};
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A line keeps at most this many steps of its path: a probe that reports every minute must not
/// grow memory without end. Once full, each new step replaces the last one (the line's status,
/// latest reading and alarm stay exact; only intermediate readings are dropped).
pub const PATH_STEPS_MAX: usize = 32;

/// One update of a line, as the core reported it (`dispatch_updated`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    pub status: DispatchStatus,
    /// The line's location after this update (the latest one recorded).
    pub location: String,
    /// The reading taken at this step; none when the update recorded none (the line's
    /// `temperature` is the latest).
    pub temperature: Option<Centi>,
    /// The line's alarm after this update: once raised, it stays.
    pub alarm: bool,
    pub ts: EngineTime,
}

/// A dispatch line: one purchase on its way to its buyer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsLine {
    pub reference: DispatchRef,
    /// When the sale was made.
    pub made: EngineTime,
    /// Who bought (a seat when a firm's seat did) and the firm whose money paid (or the buyer).
    pub buyer_pk: Pk,
    pub firm_pk: Pk,
    /// The buying firm's id (or the buyer's), and the seat's when a seat bought.
    pub buyer: Code,
    pub seat: Option<Code>,
    pub product: Code,
    /// The lot's grade; none for a book trade.
    pub grade: Option<Grade>,
    /// Containers bought; none for a book trade (its `units` count).
    pub containers: Option<u64>,
    pub units: u64,
    /// The buyer's destination for the day (`set_destination`; the seat's own, else its firm's),
    /// kept current while the day is in memory and as it was when the day left.
    pub destination: String,
    pub status: DispatchStatus,
    pub location: String,
    pub temperature: Option<Centi>,
    pub alarm: bool,
    pub updated: EngineTime,
    pub path: Vec<PathStep>,
}

impl GoodsLine {
    pub fn lot(&self) -> Option<LotId> {
        self.reference.lot()
    }

    /// The line as the core shows it (`get_dispatch`, `dispatch_updated`), on trading day `day`.
    pub fn view(&self, day: Day) -> DispatchView {
        DispatchView {
            reference: self.reference,
            day,
            buyer: self.firm_pk,
            buyer_id: self.buyer,
            seat: self.seat.map(|seat| (self.buyer_pk, seat)),
            product: self.product,
            grade: self.grade,
            containers: self.containers,
            units: self.units,
            destination: self.destination.clone(),
            status: self.status,
            location: self.location.clone(),
            temperature: self.temperature,
            alarm: self.alarm,
            updated: self.updated,
        }
    }
}

/// One sale of a lot as its trace shows it: never who bought.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotSale {
    pub reference: DispatchRef,
    /// `Clock` or `Presale`.
    pub kind: TradeKind,
    /// Per unit.
    pub price: Fen,
    pub containers: u32,
    pub units: u64,
    pub ts: EngineTime,
}

/// A lot's trace without its goods: the lot object as the core last had it, its grower's name,
/// its sales that stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotTrace {
    pub lot: Lot,
    pub grower_name: String,
    pub sales: Vec<LotSale>,
}

/// A lot's whole public trace: with its goods (the dispatch lines of its sales), in ref order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotTraceView {
    pub trace: LotTrace,
    pub goods: Vec<GoodsLine>,
}

/// One trading day's lots and dispatch lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsDay {
    pub day: Day,
    /// The lots consigned that day.
    pub lots: BTreeMap<LotId, LotTrace>,
    /// Every line of the day that stands (a voided award's is gone), by ref.
    pub lines: BTreeMap<DispatchRef, GoodsLine>,
}

impl GoodsDay {
    fn new(day: Day) -> GoodsDay {
        GoodsDay { day, lots: BTreeMap::new(), lines: BTreeMap::new() }
    }

    /// The lines of a lot's sales: its clock refs, then its presale refs.
    pub fn lines_of_lot(&self, lot: LotId) -> impl Iterator<Item = &GoodsLine> {
        let clock = DispatchRef::Clock { lot, round: 0, award: 0 }..=DispatchRef::Clock {
            lot,
            round: u32::MAX,
            award: u32::MAX,
        };
        let presale = DispatchRef::Presale { lot, number: 0 }..=DispatchRef::Presale { lot, number: u32::MAX };
        self.lines.range(clock).chain(self.lines.range(presale)).map(|(_, line)| line)
    }

    /// A lot's whole trace, if the lot was consigned that day.
    pub fn trace(&self, lot: LotId) -> Option<LotTraceView> {
        let trace = self.lots.get(&lot)?.clone();
        Some(LotTraceView { trace, goods: self.lines_of_lot(lot).cloned().collect() })
    }

    /// The book trades' lines (they belong to no lot).
    pub fn book_lines(&self) -> impl Iterator<Item = &GoodsLine> {
        self.lines.values().filter(|l| l.lot().is_none())
    }

    fn lot_mut(&mut self, lot: LotId) -> Option<&mut Lot> {
        self.lots.get_mut(&lot).map(|t| &mut t.lot)
    }
}

/// Who a participant is, for the lines and traces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: Code,
    pub name: String,
    /// A seat's firm.
    pub firm: Option<Pk>,
}

/// The goods of the days in memory, and what following the core needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goods {
    pub(crate) today: GoodsDay,
    pub(crate) previous: Option<GoodsDay>,
    /// Today's awards per (lot, round), voided ones counted: the `k` of the next clock ref.
    awards: BTreeMap<(LotId, u32), u32>,
    /// The lot each clock is on, to end it as the core does when the clock moves on.
    on_clock: BTreeMap<ClockId, LotId>,
    /// Each buyer's destination per day (`set_destination`), from the previous day in memory on.
    destinations: BTreeMap<(Pk, Day), String>,
    /// Days to write to the archive (a settled day as it stands, a day leaving memory final),
    /// oldest first.
    leaving: VecDeque<GoodsDay>,
}

/// Ends a lot as `Lot::finish` does, without its assertion: clearing follows the core and must
/// never be the one to stop the market over a lot's copy.
fn finish(lot: &mut Lot) {
    lot.presale = None;
    lot.unsold = lot.containers.saturating_sub(lot.sold);
    lot.remaining = 0;
    lot.status = if lot.sold == lot.containers {
        LotStatus::Sold
    } else if lot.sold > 0 {
        LotStatus::PartlySold
    } else {
        LotStatus::Unsold
    };
}

impl Goods {
    pub fn new(day: Day) -> Goods {
        Goods {
            today: GoodsDay::new(day),
            previous: None,
            awards: BTreeMap::new(),
            on_clock: BTreeMap::new(),
            destinations: BTreeMap::new(),
            leaving: VecDeque::new(),
        }
    }

    /// The day in memory with that date.
    pub fn day(&self, day: Day) -> Option<&GoodsDay> {
        if self.today.day == day {
            return Some(&self.today);
        }
        self.previous.as_ref().filter(|d| d.day == day)
    }

    fn day_mut(&mut self, day: Day) -> Option<&mut GoodsDay> {
        if self.today.day == day {
            return Some(&mut self.today);
        }
        self.previous.as_mut().filter(|d| d.day == day)
    }

    /// A lot's trace, when its day is in memory.
    pub fn trace(&self, lot: LotId) -> Option<LotTraceView> {
        self.today.trace(lot).or_else(|| self.previous.as_ref()?.trace(lot))
    }

    /// A line of a day in memory.
    pub fn line(&self, reference: DispatchRef) -> Option<&GoodsLine> {
        self.today.lines.get(&reference).or_else(|| self.previous.as_ref()?.lines.get(&reference))
    }

    /// The next day to write to the archive.
    pub fn take_leaving(&mut self) -> Option<GoodsDay> {
        self.leaving.pop_front()
    }

    pub fn consigned(&mut self, lot: &Lot, grower_name: String) {
        let trace = LotTrace { lot: lot.clone(), grower_name, sales: Vec::new() };
        self.today.lots.insert(lot.id, trace);
    }

    /// A full copy of a lot from the core (on the clock, or in a supply line's head).
    pub fn copied(&mut self, lot: &Lot) {
        if let Some(copy) = self.today.lot_mut(lot.id) {
            *copy = lot.clone();
        }
    }

    /// A lot placed on a clock's line. `assign_lot`'s start price is not in its event: the copy
    /// has none (rather than an old one) until the lot's next full copy brings it.
    pub fn assigned(&mut self, lot: LotId, clock: ClockId, position: u32, start_price: Option<Fen>) {
        if let Some(copy) = self.today.lot_mut(lot) {
            copy.clock = Some(clock);
            copy.position = Some(position);
            copy.start_price = start_price;
            copy.status = LotStatus::Queued;
        }
    }

    /// `LotOnClock`: the clock's previous lot ended (or went back to its line), this one is on.
    pub fn on_clock(&mut self, clock: ClockId, lot: &Lot) {
        if self.on_clock.get(&clock).is_some_and(|previous| *previous != lot.id) {
            self.clock_moved_on(clock);
        }
        self.copied(lot);
        self.on_clock.insert(clock, lot.id);
    }

    pub fn clock_state(&mut self, clock: ClockId, phase: ClockPhase) {
        if phase == ClockPhase::Idle {
            self.clock_moved_on(clock);
        }
    }

    /// The lot a clock leaves: finished when nothing remains, else back in its line (a halt) —
    /// what the core does without an event of its own.
    fn clock_moved_on(&mut self, clock: ClockId) {
        let Some(lot) = self.on_clock.remove(&clock) else { return };
        if let Some(copy) = self.today.lot_mut(lot) {
            if copy.status == LotStatus::OnClock {
                if copy.remaining == 0 {
                    finish(copy);
                } else {
                    copy.status = LotStatus::Queued;
                }
            }
        }
    }

    pub fn ended(&mut self, lot: LotId, withdrawn: bool) {
        if let Some(copy) = self.today.lot_mut(lot) {
            finish(copy);
            if withdrawn {
                copy.status = LotStatus::Withdrawn;
                copy.clock = None;
            }
        }
    }

    pub fn presale_offer(&mut self, lot: LotId, offer: Option<PresaleOffer>) {
        if let Some(copy) = self.today.lot_mut(lot) {
            copy.presale = offer;
        }
    }

    /// A new line, its destination as the buyer set it.
    fn add_line(&mut self, mut line: GoodsLine) {
        let day = self.today.day;
        line.destination = self.destination(line.buyer_pk, line.firm_pk, day).to_string();
        self.today.lines.insert(line.reference, line);
    }

    fn destination(&self, buyer: Pk, firm: Pk, day: Day) -> &str {
        self.destinations.get(&(buyer, day)).or_else(|| self.destinations.get(&(firm, day))).map_or("", String::as_str)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_line(
        reference: DispatchRef,
        made: EngineTime,
        buyer: (Pk, Pk, Code, Option<Code>),
        product: Code,
        grade: Option<Grade>,
        containers: Option<u64>,
        units: u64,
    ) -> GoodsLine {
        let (buyer_pk, firm_pk, buyer, seat) = buyer;
        GoodsLine {
            reference,
            made,
            buyer_pk,
            firm_pk,
            buyer,
            seat,
            product,
            grade,
            containers,
            units,
            destination: String::new(),
            status: DispatchStatus::Awaiting,
            location: String::new(),
            temperature: None,
            alarm: false,
            updated: made,
            path: Vec::new(),
        }
    }

    /// A clock award: the lot's numbers, a sale on its trace, a line. `buyer`: (who bought, the
    /// firm that pays, the firm's id, the seat's id).
    pub fn awarded(&mut self, award: &Award, buyer: (Pk, Pk, Code, Option<Code>)) {
        let k = self.awards.entry((award.lot, award.round)).or_default();
        *k += 1;
        let reference = DispatchRef::Clock { lot: award.lot, round: award.round, award: *k };
        if let Some(trace) = self.today.lots.get_mut(&award.lot) {
            trace.lot.remaining = award.remaining;
            trace.lot.sold += award.containers;
            trace.sales.push(LotSale {
                reference,
                kind: TradeKind::Clock,
                price: award.price,
                containers: award.containers,
                units: award.units,
                ts: award.ts,
            });
        }
        let containers = Some(u64::from(award.containers));
        let line =
            Goods::new_line(reference, award.ts, buyer, award.product, Some(award.grade), containers, award.units);
        self.add_line(line);
    }

    /// A voided award: the `k`-th of its round. Its sale and its line are gone.
    pub fn voided(&mut self, lot: LotId, round: u32, k: u32, containers: u32, remaining: u32) {
        let reference = DispatchRef::Clock { lot, round, award: k };
        self.today.lines.remove(&reference);
        if let Some(trace) = self.today.lots.get_mut(&lot) {
            trace.sales.retain(|s| s.reference != reference);
            trace.lot.remaining = remaining;
            trace.lot.sold = trace.lot.sold.saturating_sub(containers);
        }
    }

    pub fn presale_bought(&mut self, sale: &PresaleSale, buyer: (Pk, Pk, Code, Option<Code>)) {
        let reference = DispatchRef::Presale { lot: sale.lot, number: sale.number };
        if let Some(trace) = self.today.lots.get_mut(&sale.lot) {
            let lot = &mut trace.lot;
            lot.presale =
                (sale.offer_left > 0).then_some(PresaleOffer { price: sale.price, containers: sale.offer_left });
            lot.remaining = sale.remaining;
            lot.sold += sale.containers;
            lot.presales = sale.number;
            if lot.remaining == 0 {
                finish(lot);
            }
            trace.sales.push(LotSale {
                reference,
                kind: TradeKind::Presale,
                price: sale.price,
                containers: sale.containers,
                units: sale.units,
                ts: sale.ts,
            });
        }
        let containers = Some(u64::from(sale.containers));
        let line = Goods::new_line(reference, sale.ts, buyer, sale.product, Some(sale.grade), containers, sale.units);
        self.add_line(line);
    }

    pub fn traded(&mut self, trade: &Trade, buyer: (Pk, Pk, Code, Option<Code>)) {
        let reference = DispatchRef::Book(trade.trade_id);
        let line = Goods::new_line(reference, trade.ts, buyer, trade.product, None, None, trade.quantity);
        self.add_line(line);
    }

    /// `set_destination`: the lines of that day in memory follow it.
    pub fn destination_set(&mut self, buyer: Pk, day: Day, destination: &str) {
        self.destinations.insert((buyer, day), destination.to_string());
        let mut changed = Vec::new();
        if let Some(d) = self.day(day) {
            for line in d.lines.values() {
                let ours = line.buyer_pk == buyer || line.firm_pk == buyer;
                if ours {
                    changed.push((line.reference, self.destination(line.buyer_pk, line.firm_pk, day).to_string()));
                }
            }
        }
        if let Some(d) = self.day_mut(day) {
            for (reference, destination) in changed {
                if let Some(line) = d.lines.get_mut(&reference) {
                    line.destination = destination;
                }
            }
        }
    }

    /// `dispatch_updated`: the line's state as the core has it now, and one more step of its path.
    pub fn updated(&mut self, view: &DispatchView, reading: Option<Centi>) {
        let Some(line) = self.day_mut(view.day).and_then(|d| d.lines.get_mut(&view.reference)) else { return };
        line.status = view.status;
        line.location = view.location.clone();
        line.temperature = view.temperature;
        line.alarm = view.alarm;
        line.updated = view.updated;
        let step = PathStep {
            status: view.status,
            location: view.location.clone(),
            temperature: reading,
            alarm: view.alarm,
            ts: view.updated,
        };
        if line.path.len() >= PATH_STEPS_MAX {
            *line.path.last_mut().expect("a full path has steps") = step;
        } else {
            line.path.push(step);
        }
    }

    /// `end_of_day`: today's unfinished lots end as the core ends them; the previous day leaves
    /// memory (final), today becomes the previous day and is also written as it stands.
    pub fn day_settled(&mut self, next_day: Day) {
        for trace in self.today.lots.values_mut() {
            let lot = &mut trace.lot;
            if !lot.status.is_finished() {
                lot.clock = None;
                finish(lot);
            }
        }
        self.awards.clear();
        self.on_clock.clear();
        let today = std::mem::replace(&mut self.today, GoodsDay::new(next_day));
        if let Some(previous) = self.previous.take() {
            self.leaving.push_back(previous);
        }
        self.leaving.push_back(today.clone());
        let kept_from = today.day;
        self.previous = Some(today);
        self.destinations.retain(|(_, day), _| *day >= kept_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::types::{OrderId, Side, TradeId};

    fn trade(id: u64, buyer: Pk) -> Trade {
        Trade {
            trade_id: TradeId(id),
            symbol: Code::from_static("ROSE-A"),
            product: Code::from_static("ROSE"),
            price: Fen(100),
            quantity: 5,
            amount: Fen(500),
            aggressor: Side::Buy,
            buyer,
            buyer_id: Code::from_static("S1"),
            buyer_order: OrderId(1),
            seller: Pk(9),
            seller_id: Code::from_static("G1"),
            seller_order: OrderId(2),
            fee: Fen(1),
            commission: Fen(25),
            ts: EngineTime(7),
        }
    }

    fn view(goods: &Goods, reference: DispatchRef, status: DispatchStatus, t: i32, ts: u64) -> DispatchView {
        let line = goods.line(reference).expect("the line");
        DispatchView {
            reference,
            day: goods.today.day,
            buyer: line.firm_pk,
            buyer_id: line.buyer,
            seat: None,
            product: line.product,
            grade: None,
            containers: None,
            units: line.units,
            destination: line.destination.clone(),
            status,
            location: String::new(),
            temperature: Some(Centi(t)),
            alarm: t > 800,
            updated: EngineTime(ts),
        }
    }

    #[test]
    fn a_seats_own_destination_comes_before_its_firms_and_lines_follow_it() {
        let (seat, firm, day) = (Pk(2), Pk(1), Day(100));
        let mut goods = Goods::new(day);
        goods.destination_set(firm, day, "pickup:D1");
        let buyer = (seat, firm, Code::from_static("F1"), Some(Code::from_static("S1")));
        goods.traded(&trade(1, seat), buyer);
        let reference = DispatchRef::Book(TradeId(1));
        assert_eq!(goods.line(reference).unwrap().destination, "pickup:D1", "the firm's, when the seat set none");
        goods.destination_set(seat, day, "delivery:Caoan Rd 88");
        assert_eq!(goods.line(reference).unwrap().destination, "delivery:Caoan Rd 88");
        goods.destination_set(firm, day, "pickup:D2");
        assert_eq!(goods.line(reference).unwrap().destination, "delivery:Caoan Rd 88", "the seat's own stays");
    }

    #[test]
    fn a_path_keeps_at_most_its_limit_of_steps_and_the_latest_state() {
        let mut goods = Goods::new(Day(100));
        goods.traded(&trade(1, Pk(1)), (Pk(1), Pk(1), Code::from_static("B1"), None));
        let reference = DispatchRef::Book(TradeId(1));
        for n in 0..PATH_STEPS_MAX as u64 + 10 {
            let status = if n < 5 { DispatchStatus::Picked } else { DispatchStatus::ColdStore };
            let v = view(&goods, reference, status, 400 + n as i32 * 20, n);
            goods.updated(&v, v.temperature);
        }
        let line = goods.line(reference).unwrap();
        assert_eq!(line.path.len(), PATH_STEPS_MAX);
        let last = line.path.last().unwrap();
        assert_eq!((last.ts, last.temperature, last.alarm), (line.updated, line.temperature, true));
        assert_eq!((line.status, line.alarm), (DispatchStatus::ColdStore, true));
        assert_eq!(line.path[0].status, DispatchStatus::Picked);
    }

    #[test]
    fn a_day_leaves_memory_at_the_second_end_of_day_and_is_written_twice() {
        let mut goods = Goods::new(Day(100));
        goods.traded(&trade(1, Pk(1)), (Pk(1), Pk(1), Code::from_static("B1"), None));
        goods.day_settled(Day(101));
        assert_eq!(goods.take_leaving().map(|d| (d.day, d.lines.len())), Some((Day(100), 1)), "as it stood");
        assert!(goods.take_leaving().is_none());
        assert!(goods.line(DispatchRef::Book(TradeId(1))).is_some(), "still in memory the next day");
        goods.day_settled(Day(102));
        let leaving: Vec<Day> = std::iter::from_fn(|| goods.take_leaving()).map(|d| d.day).collect();
        assert_eq!(leaving, vec![Day(100), Day(101)], "day 100 final, day 101 as it stood");
        assert!(goods.line(DispatchRef::Book(TradeId(1))).is_none(), "day 100 has left memory");
    }
}
