//! Dispatch (protocol section 12): every purchase of a buyer becomes a line that logistics moves
//! from `awaiting` to `delivered`, with the buyer's destination and the cold chain's readings.
//!
//! The core keeps the lines of the trading day and of the one before (the complaint window,
//! `complaints.rs`): that is what a status change or a complaint has to check. A line is appended
//! by the very command that made the sale, in a few stores and no lookup (the clock's bid → award
//! path is the market's hottest); the ref → line index is built lazily by the first command that
//! looks a line up. The history (each reading, the lines of older days, the lot's trace) is
//! clearing's, built from the events after the core.

use crate::core::catalogue::{Category, Grade};
use crate::reject::Reject;
use crate::types::{Code, Day, EngineTime, Fen, LotId, Pk, TradeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A dispatch line's ref: `clock:<lot_id>:<round>:<k>`, `presale:<lot_id>:<n>`, `book:<trade_id>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DispatchRef {
    /// The `award`-th award (1-based, voided ones counted) of round `round` of the lot.
    Clock {
        lot: LotId,
        round: u32,
        award: u32,
    },
    /// The lot's `number`-th presale purchase.
    Presale {
        lot: LotId,
        number: u32,
    },
    Book(TradeId),
}

impl DispatchRef {
    pub fn kind(self) -> &'static str {
        match self {
            DispatchRef::Clock { .. } => "clock",
            DispatchRef::Presale { .. } => "presale",
            DispatchRef::Book(_) => "book",
        }
    }

    pub fn lot(self) -> Option<LotId> {
        match self {
            DispatchRef::Clock { lot, .. } | DispatchRef::Presale { lot, .. } => Some(lot),
            DispatchRef::Book(_) => None,
        }
    }

    /// Parses the wire form; `None` when it is not one of the three shapes.
    pub fn parse(text: &str) -> Option<DispatchRef> {
        fn number<T: std::str::FromStr>(part: &str) -> Option<T> {
            // Digits only: `+1` or ` 1` are not refs a server ever hands out.
            (!part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        }
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["clock", lot, round, award] => {
                Some(DispatchRef::Clock { lot: LotId(number(lot)?), round: number(round)?, award: number(award)? })
            }
            ["presale", lot, n] => Some(DispatchRef::Presale { lot: LotId(number(lot)?), number: number(n)? }),
            ["book", trade] => Some(DispatchRef::Book(TradeId(number(trade)?))),
            _ => None,
        }
    }
}

impl fmt::Display for DispatchRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchRef::Clock { lot, round, award } => write!(f, "clock:{}:{round}:{award}", lot.0),
            DispatchRef::Presale { lot, number } => write!(f, "presale:{}:{number}", lot.0),
            DispatchRef::Book(trade) => write!(f, "book:{}", trade.0),
        }
    }
}

/// Where the goods are. The order is the only way they go: never back, a step may be skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DispatchStatus {
    Awaiting,
    Picked,
    ColdStore,
    Loaded,
    Delivered,
}

impl DispatchStatus {
    pub const ALL: [DispatchStatus; 5] = [
        DispatchStatus::Awaiting,
        DispatchStatus::Picked,
        DispatchStatus::ColdStore,
        DispatchStatus::Loaded,
        DispatchStatus::Delivered,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Awaiting => "awaiting",
            DispatchStatus::Picked => "picked",
            DispatchStatus::ColdStore => "cold_store",
            DispatchStatus::Loaded => "loaded",
            DispatchStatus::Delivered => "delivered",
        }
    }
    pub fn parse(text: &str) -> Option<DispatchStatus> {
        DispatchStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A temperature in hundredths of a degree Celsius (`temperature_c` is a decimal string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Centi(pub i32);

impl Centi {
    /// Readings and maxima are between these: a probe outside them is broken, not cold.
    pub const MIN: Centi = Centi(-5_000);
    pub const MAX: Centi = Centi(6_000);
}

/// A new data directory's cold-chain maxima (protocol section 12): 8 °C for cut flowers, 15 °C
/// for potted plants and foliage; `other` has none until the operator sets one.
pub const DEFAULT_COLD_CHAIN: [(Category, Centi); 3] =
    [(Category::CutFlower, Centi(800)), (Category::PottedPlant, Centi(1_500)), (Category::Foliage, Centi(1_500))];

/// `destination` and `location` are at most this many bytes.
pub const PLACE_BYTES_MAX: usize = 128;

/// Checks a buyer's destination: `pickup:<dock>` or `delivery:<address>`, clean text.
pub fn check_destination(destination: &str) -> Result<(), Reject> {
    let place = destination.strip_prefix("pickup:").or_else(|| destination.strip_prefix("delivery:"));
    match place {
        Some(place) if !place.trim().is_empty() => {}
        _ => return Err(Reject::bad_request("field `destination` must be `pickup:<dock>` or `delivery:<address>`")),
    }
    if destination.len() > PLACE_BYTES_MAX {
        return Err(Reject::bad_request(format!("field `destination` must be at most {PLACE_BYTES_MAX} bytes")));
    }
    crate::text::check_clean("destination", destination)
}

/// One purchase on its way to the buyer. Small and flat: it is appended on the award path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchLine {
    pub reference: DispatchRef,
    /// Who bought: the seat when a firm's seat traded.
    pub buyer: Pk,
    /// Who sold: the lot's grower, or the book trade's seller.
    pub seller: Pk,
    pub product: Code,
    /// The lot's grade; none for a book trade (a standard product).
    pub grade: Option<Grade>,
    /// Containers for a lot's line, units for a book trade's (its complaints count units).
    pub quantity: u64,
    pub units_per_container: u32,
    /// Per unit.
    pub price: Fen,
    pub status: DispatchStatus,
    pub alarm: bool,
    /// The line was voided with its award: it is gone (kept as a tombstone so indices hold).
    pub voided: bool,
    /// The latest reading, when there was one.
    pub temperature: Option<Centi>,
    pub updated: EngineTime,
}

impl DispatchLine {
    pub fn units(&self) -> u64 {
        self.quantity * self.units_per_container as u64
    }

    pub fn containers(&self) -> Option<u64> {
        (!matches!(self.reference, DispatchRef::Book(_))).then_some(self.quantity)
    }
}

/// One trading day's lines, in the order they were made.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DayDispatch {
    pub day: Day,
    pub lines: Vec<DispatchLine>,
    /// The latest `location` of each line that has one (rare beside the lines themselves).
    pub locations: BTreeMap<DispatchRef, String>,
    /// ref → place in `lines`, for the lines up to `indexed`; built by the first lookup.
    #[serde(skip)]
    index: HashMap<DispatchRef, u32>,
    #[serde(skip)]
    indexed: usize,
}

impl DayDispatch {
    fn new(day: Day) -> DayDispatch {
        DayDispatch { day, ..DayDispatch::default() }
    }

    /// Where the line with this ref is in `lines`, voided ones included.
    fn position(&mut self, reference: DispatchRef) -> Option<usize> {
        while self.indexed < self.lines.len() {
            self.index.insert(self.lines[self.indexed].reference, self.indexed as u32);
            self.indexed += 1;
        }
        self.index.get(&reference).map(|at| *at as usize)
    }

    pub fn location(&self, reference: DispatchRef) -> &str {
        self.locations.get(&reference).map_or("", String::as_str)
    }
}

/// The lines the core still decides about: today's and the previous trading day's.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Dispatch {
    pub previous: Option<DayDispatch>,
    pub today: DayDispatch,
    /// Each buyer's destination by day (`set_destination`), from the previous trading day on.
    pub destinations: BTreeMap<(Pk, Day), String>,
}

impl Dispatch {
    pub fn new(day: Day) -> Dispatch {
        Dispatch { previous: None, today: DayDispatch::new(day), destinations: BTreeMap::new() }
    }

    /// Appends a purchase's line. The sale was just checked, so nothing here can fail.
    #[inline]
    pub fn append(&mut self, line: DispatchLine) {
        self.today.lines.push(line);
    }

    /// The day's lines, if the core still keeps them.
    pub fn day_mut(&mut self, day: Day) -> Option<&mut DayDispatch> {
        if self.today.day == day {
            return Some(&mut self.today);
        }
        self.previous.as_mut().filter(|d| d.day == day)
    }

    pub fn day(&self, day: Day) -> Option<&DayDispatch> {
        if self.today.day == day {
            return Some(&self.today);
        }
        self.previous.as_ref().filter(|d| d.day == day)
    }

    /// The line with this ref on either day kept.
    pub fn find(&mut self, reference: DispatchRef) -> Option<(Day, &mut DispatchLine)> {
        if let Some(at) = self.today.position(reference) {
            return Some((self.today.day, &mut self.today.lines[at]));
        }
        let previous = self.previous.as_mut()?;
        let at = previous.position(reference)?;
        Some((previous.day, &mut previous.lines[at]))
    }

    pub fn location(&self, day: Day, reference: DispatchRef) -> &str {
        self.day(day).map_or("", |d| d.location(reference))
    }

    /// The destination a line of `buyer` (falling back to its firm's) goes to on `day`.
    pub fn destination(&self, buyer: Pk, firm: Pk, day: Day) -> &str {
        self.destinations.get(&(buyer, day)).or_else(|| self.destinations.get(&(firm, day))).map_or("", String::as_str)
    }

    /// `end_of_day`: today's lines become the previous day's; the day before leaves the core
    /// (clearing has every line and reading of it), with the destinations of days before `next`'s
    /// previous.
    pub fn roll(&mut self, next: Day) {
        let today = std::mem::replace(&mut self.today, DayDispatch::new(next));
        let kept_from = today.day;
        self.previous = Some(today);
        self.destinations.retain(|(_, day), _| *day >= kept_from);
    }
}

/// A line as the protocol shows it: every code resolved, the destination and location filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchView {
    pub reference: DispatchRef,
    pub day: Day,
    /// The buying firm (or the buyer itself when it is no seat).
    pub buyer: Pk,
    pub buyer_id: Code,
    /// The seat that bought, when a firm's seat did.
    pub seat: Option<(Pk, Code)>,
    pub product: Code,
    pub grade: Option<Grade>,
    pub containers: Option<u64>,
    pub units: u64,
    pub destination: String,
    pub status: DispatchStatus,
    pub location: String,
    pub temperature: Option<Centi>,
    pub alarm: bool,
    pub updated: EngineTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_print_and_parse_back() {
        for r in [
            DispatchRef::Clock { lot: LotId(12), round: 2, award: 3 },
            DispatchRef::Presale { lot: LotId(7), number: 1 },
            DispatchRef::Book(TradeId(99)),
        ] {
            assert_eq!(DispatchRef::parse(&r.to_string()), Some(r));
        }
        for bad in ["", "clock:1:2", "clock:1:2:3:4", "book:-1", "book:+1", "presale:a:1", "ship:1", "book:"] {
            assert_eq!(DispatchRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn destinations_are_a_pickup_or_a_delivery() {
        check_destination("pickup:D12").unwrap();
        check_destination("delivery:88 Caoan Rd, Shanghai").unwrap();
        for bad in ["D12", "pickup:", "delivery: ", "pickup:a\nb"] {
            assert!(check_destination(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lines_are_found_after_they_are_appended() {
        let mut dispatch = Dispatch::new(Day(100));
        let line = |n| DispatchLine {
            reference: DispatchRef::Book(TradeId(n)),
            buyer: Pk(1),
            seller: Pk(2),
            product: Code::from_static("ROSE"),
            grade: None,
            quantity: n,
            units_per_container: 1,
            price: Fen(10),
            status: DispatchStatus::Awaiting,
            alarm: false,
            voided: false,
            temperature: None,
            updated: EngineTime(0),
        };
        dispatch.append(line(1));
        assert_eq!(dispatch.find(DispatchRef::Book(TradeId(1))).unwrap().1.quantity, 1);
        dispatch.append(line(2));
        dispatch.roll(Day(101));
        dispatch.append(line(3));
        assert_eq!(dispatch.find(DispatchRef::Book(TradeId(2))).map(|(d, l)| (d, l.quantity)), Some((Day(100), 2)));
        assert_eq!(dispatch.find(DispatchRef::Book(TradeId(3))).map(|(d, _)| d), Some(Day(101)));
        dispatch.roll(Day(102));
        assert!(dispatch.find(DispatchRef::Book(TradeId(1))).is_none(), "two days back is clearing's");
    }
}

/// The rules: lines made by sales, moved by logistics, routed by the buyer's destination.
mod rules {
    use super::*;
    use crate::command::Actor;
    use crate::core::market::Market;
    use crate::core::participants::Role;
    use crate::event::Event;

    impl Market {
        /// `set_cold_chain`: a category's maximum, market state like the fees.
        pub(crate) fn set_cold_chain(
            &mut self,
            actor: Actor,
            category: Category,
            max: Centi,
            out: &mut Vec<Event>,
        ) -> Result<(), Reject> {
            self.participants.authorise(actor, Role::Operator)?;
            if !(Centi::MIN..=Centi::MAX).contains(&max) {
                return Err(Reject::bad_request("max_temperature_c must be between -50 and 60"));
            }
            self.cold_chain.insert(category, max);
            out.push(Event::ColdChainSet { category, max_temperature: max });
            Ok(())
        }

        /// A category's cold-chain maximum, if it has one.
        pub fn max_temperature(&self, category: Category) -> Option<Centi> {
            self.cold_chain.get(&category).copied()
        }

        /// `set_destination`: where a buyer's goods of `day` (today by default) go.
        pub(crate) fn set_destination(
            &mut self,
            actor: Actor,
            day: Option<Day>,
            destination: &str,
            out: &mut Vec<Event>,
        ) -> Result<(), Reject> {
            let buyer = self.participants.authorise(actor, Role::Buyer)?.expect("buyers are participants");
            let day = day.unwrap_or(self.day);
            // Today's, or a coming day's within a week: older lines have left the core.
            if day < self.day || day.0 > self.day.0 + 7 {
                return Err(Reject::invalid_state(format!(
                    "day {day}: a destination is set for today ({}) or one of the next 7 days",
                    self.day
                )));
            }
            check_destination(destination)?;
            // Bounded without a limit of its own: one per buyer for each of at most 9 days.
            self.dispatch.destinations.insert((buyer, day), destination.to_string());
            out.push(Event::DestinationSet { buyer, day, destination: destination.to_string() });
            Ok(())
        }

        /// `update_dispatch`: moves a line on (never back) and records a reading.
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn update_dispatch(
            &mut self,
            actor: Actor,
            reference: DispatchRef,
            status: DispatchStatus,
            temperature: Option<Centi>,
            location: Option<&str>,
            now: EngineTime,
            out: &mut Vec<Event>,
        ) -> Result<(), Reject> {
            if self.participants.authorise(actor, Role::Logistics).is_err() {
                self.participants
                    .authorise(actor, Role::Operator)
                    .map_err(|_| Reject::forbidden("update_dispatch needs the logistics or the operator role"))?;
            }
            if let Some(t) = temperature {
                if !(Centi::MIN..=Centi::MAX).contains(&t) {
                    return Err(Reject::bad_request("temperature_c must be between -50 and 60"));
                }
            }
            if let Some(location) = location {
                if location.len() > PLACE_BYTES_MAX {
                    return Err(Reject::bad_request(format!(
                        "field `location` must be at most {PLACE_BYTES_MAX} bytes"
                    )));
                }
                crate::text::check_clean("location", location)?;
            }
            self.dispatch_pending(reference);
            let (day, line) = self
                .dispatch
                .find(reference)
                .filter(|(_, l)| !l.voided)
                .ok_or_else(|| Reject::not_found(format!("no dispatch line {reference} today or yesterday")))?;
            let reading = temperature.is_some() || location.is_some();
            if line.status == DispatchStatus::Delivered {
                return Err(Reject::invalid_state(format!("line {reference} is already delivered")));
            }
            if status < line.status || (status == line.status && !reading) {
                return Err(Reject::invalid_state(format!(
                    "line {reference} is {}: a status never goes back",
                    line.status.as_str()
                )));
            }
            let category = self.products.get(&line.product).map(|p| p.category);
            let max = category.and_then(|c| self.cold_chain.get(&c).copied());
            let line = self.dispatch.find(reference).expect("found above").1;
            line.status = status;
            line.updated = now;
            let mut alarm_raised = false;
            if let Some(t) = temperature {
                line.temperature = Some(t);
                if max.is_some_and(|max| t > max) && !line.alarm {
                    line.alarm = true;
                    alarm_raised = true;
                }
            }
            let line = *line;
            if let Some(location) = location {
                let day = self.dispatch.day_mut(day).expect("the line's day");
                day.locations.insert(reference, location.to_string());
            }
            let view = self.view_of(self.dispatch.day(day).expect("the line's day"), &line);
            out.push(Event::DispatchUpdated {
                line: Box::new(view),
                alarm_raised,
                max_temperature: max,
                reading: temperature,
            });
            Ok(())
        }

        /// A clock award's line is made when its lot leaves the clock: one asked for before
        /// that is made now, with the rest of its clock's.
        pub(crate) fn dispatch_pending(&mut self, reference: DispatchRef) {
            if let DispatchRef::Clock { lot, .. } = reference {
                if let Some(index) = self.clocks.iter().position(|c| c.lot == Some(lot)) {
                    self.dispatch_clock_awards(index);
                }
            }
        }

        fn view_of(&self, d: &DayDispatch, line: &DispatchLine) -> DispatchView {
            let firm = self.participants.payer(line.buyer);
            let seat = (firm != line.buyer).then(|| (line.buyer, self.participants.get(line.buyer).id));
            DispatchView {
                reference: line.reference,
                day: d.day,
                buyer: firm,
                buyer_id: self.participants.get(firm).id,
                seat,
                product: line.product,
                grade: line.grade,
                containers: line.containers(),
                units: line.units(),
                destination: self.dispatch.destination(line.buyer, firm, d.day).to_string(),
                status: line.status,
                location: d.location(line.reference).to_string(),
                temperature: line.temperature,
                alarm: line.alarm,
                updated: line.updated,
            }
        }

        /// The day's lines as the core has them (today's and the previous trading day's), of
        /// `buyer` (a firm sees its seats' lines too; a seat its own), or every line; `None` when
        /// the day has left the core. The reference clearing's `get_dispatch` answers are checked
        /// against; the gateway asks clearing, so that copying a day's lines never holds the
        /// sequencer.
        pub fn dispatch_lines(&self, day: Day, buyer: Option<Pk>) -> Option<Vec<DispatchView>> {
            let d = self.dispatch.day(day)?;
            let mine = |line: &DispatchLine| match buyer {
                None => true,
                Some(b) => line.buyer == b || self.participants.payer(line.buyer) == b,
            };
            // Today's lines include the awards of lots still on their clocks.
            let pending: Vec<DispatchLine> = if day == self.day {
                self.clocks
                    .iter()
                    .filter_map(|c| Some((c, self.lots.get(&c.lot?)?)))
                    .flat_map(|(c, lot)| c.numbered_awards(c.dispatched).map(move |(r, k)| (lot, r, k)))
                    .filter(|(_, r, _)| !r.voided)
                    .map(|(lot, r, k)| crate::core::auction::award_line(lot, r, k))
                    .collect()
            } else {
                Vec::new()
            };
            Some(d.lines.iter().chain(&pending).filter(|l| !l.voided && mine(l)).map(|l| self.view_of(d, l)).collect())
        }

        /// The previous trading day the core still keeps lines of.
        pub fn dispatch_previous_day(&self) -> Option<Day> {
            self.dispatch.previous.as_ref().map(|d| d.day)
        }
    }
}
