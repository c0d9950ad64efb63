//! Complaints and the grower's quality index (protocol section 12). A buyer complains about a
//! purchase until the end of the next trading day; the operator accepts (with a credit the grower
//! pays the buyer, booked by clearing as `correction` lines on the day of the decision) or
//! rejects. The quality index counts, over a grower's last 30 settled trading days, the
//! containers of accepted complaints against the containers sold.
//!
//! The index moves once a day, at `end_of_day`, when the day's sales and decisions are closed
//! into each grower's window: so a lot's `qi` is the same all day (buyers plan by it) and keeping
//! it costs the award path nothing.

use crate::core::catalogue::Grade;
use crate::core::dispatch::DispatchRef;
use crate::types::{div_round_half_even, Code, Day, EngineTime, Fen, LotId, Pk};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The quality index looks back this many settled trading days.
pub const QUALITY_WINDOW_DAYS: usize = 30;
/// A complaint's note is at most this many bytes.
pub const NOTE_BYTES_MAX: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ComplaintReason {
    Quality,
    Quantity,
    Grade,
    Damaged,
}

impl ComplaintReason {
    pub const ALL: [ComplaintReason; 4] =
        [ComplaintReason::Quality, ComplaintReason::Quantity, ComplaintReason::Grade, ComplaintReason::Damaged];
    pub fn as_str(self) -> &'static str {
        match self {
            ComplaintReason::Quality => "quality",
            ComplaintReason::Quantity => "quantity",
            ComplaintReason::Grade => "grade",
            ComplaintReason::Damaged => "damaged",
        }
    }
    pub fn parse(text: &str) -> Option<ComplaintReason> {
        ComplaintReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Decision {
    Accepted,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
        }
    }
    pub fn parse(text: &str) -> Option<Decision> {
        [Decision::Accepted, Decision::Rejected].into_iter().find(|d| d.as_str() == text)
    }
}

/// A complaint, from filing to decision. Everything the decision and its correction need is
/// copied in when it is filed: the purchase's line may have left the core by then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    pub id: u64,
    pub reference: DispatchRef,
    /// The trading day of the purchase.
    pub day: Day,
    /// Who filed it (the seat, when a seat bought), and who is credited (its firm, or itself).
    pub buyer: Pk,
    pub payer: Pk,
    /// Who pays an accepted credit: the grower, or the book trade's seller.
    pub seller: Pk,
    pub lot: Option<LotId>,
    pub product: Code,
    pub grade: Option<Grade>,
    pub reason: ComplaintReason,
    /// Containers (units for a book trade) complained about.
    pub containers: u64,
    pub note: String,
    /// The amount of the complained containers: the most a credit may be.
    pub credit_max: Fen,
    pub filed: EngineTime,
    pub decision: Option<(Decision, Fen)>,
}

/// One grower's figures for one settled trading day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityDay {
    pub day: Day,
    /// Lots with a sale that day, and their containers sold.
    pub lots: u64,
    pub containers_sold: u64,
    /// Complaints about the grower's lots filed that day, decisions taken that day, and the
    /// containers of those accepted.
    pub complaints: u64,
    pub accepted: u64,
    pub accepted_containers: u64,
}

/// `quality {grower, days, lots, containers_sold, complaints, accepted, qi}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quality {
    /// Settled trading days in the window (up to 30; fewer while the market is younger).
    pub days: u64,
    pub lots: u64,
    pub containers_sold: u64,
    pub complaints: u64,
    pub accepted: u64,
    pub accepted_containers: u64,
    /// `100 × (1 − accepted containers / containers sold)` in hundredths (0..=10_000), half-even;
    /// none when nothing was sold in the window.
    pub qi: Option<u32>,
}

impl Quality {
    fn of(days: u64, window: &VecDeque<QualityDay>) -> Quality {
        let mut q =
            Quality { days, lots: 0, containers_sold: 0, complaints: 0, accepted: 0, accepted_containers: 0, qi: None };
        for d in window {
            q.lots += d.lots;
            q.containers_sold += d.containers_sold;
            q.complaints += d.complaints;
            q.accepted += d.accepted;
            q.accepted_containers += d.accepted_containers;
        }
        q.qi = quality_index(q.containers_sold, q.accepted_containers);
        q
    }
}

/// `100 × (1 − accepted / sold)` in hundredths, half-even, never below 0 (a credit decided now
/// may be for containers sold before the window).
pub fn quality_index(sold: u64, accepted: u64) -> Option<u32> {
    (sold > 0).then(|| {
        let good = sold.saturating_sub(accepted) as i128;
        div_round_half_even(good * 10_000, sold as i128) as u32
    })
}

/// The complaints still open, today's counts not yet closed into the window, and every grower's
/// window of settled days.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Complaints {
    pub open: BTreeMap<u64, Complaint>,
    pub next_id: u64,
    /// Containers complained about per ref (all complaints on a ref at most what was bought),
    /// for the refs the core still keeps.
    pub complained: BTreeMap<DispatchRef, u64>,
    /// Today so far, per grower: complaints filed, decisions accepted and their containers.
    pub today: BTreeMap<Pk, QualityDay>,
    /// The settled trading days in the window, newest last.
    pub days: VecDeque<Day>,
    /// Each grower's days in the window with anything to count, newest last.
    pub windows: BTreeMap<Pk, VecDeque<QualityDay>>,
    /// Each grower's figures over its window, worked out at `end_of_day`.
    pub quality: BTreeMap<Pk, Quality>,
}

impl Complaints {
    pub fn new() -> Complaints {
        Complaints { next_id: 1, ..Complaints::default() }
    }

    /// A grower's quality: every field zero and `qi` none when it has no record in the window.
    pub fn quality(&self, grower: Pk) -> Quality {
        self.quality.get(&grower).copied().unwrap_or(Quality {
            days: self.days.len() as u64,
            lots: 0,
            containers_sold: 0,
            complaints: 0,
            accepted: 0,
            accepted_containers: 0,
            qi: None,
        })
    }

    /// Closes `day` into the windows: `sold` is each grower's (lots, containers) sold that day.
    pub fn close_day(&mut self, day: Day, sold: BTreeMap<Pk, (u64, u64)>) {
        let mut closing = std::mem::take(&mut self.today);
        for (grower, (lots, containers)) in sold {
            let d = closing.entry(grower).or_default();
            d.lots = lots;
            d.containers_sold = containers;
        }
        self.days.push_back(day);
        while self.days.len() > QUALITY_WINDOW_DAYS {
            self.days.pop_front();
        }
        let first = *self.days.front().expect("just pushed");
        for (grower, mut d) in closing {
            d.day = day;
            self.windows.entry(grower).or_default().push_back(d);
        }
        let days = self.days.len() as u64;
        self.quality.clear();
        self.windows.retain(|grower, window| {
            while window.front().is_some_and(|d| d.day < first) {
                window.pop_front();
            }
            if window.is_empty() {
                return false;
            }
            self.quality.insert(*grower, Quality::of(days, window));
            true
        });
    }
}

/// The rules: who may complain about what and until when, and what a decision books.
mod rules {
    use super::*;
    use crate::command::Actor;
    use crate::core::market::Market;
    use crate::core::participants::Role;
    use crate::event::Event;
    use crate::reject::Reject;

    impl Market {
        /// `file_complaint`: a buyer (or the seat that bought, or its firm) about its own
        /// purchase, until the end of the next trading day.
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn file_complaint(
            &mut self,
            actor: Actor,
            reference: DispatchRef,
            reason: ComplaintReason,
            containers: u64,
            note: &str,
            now: EngineTime,
            out: &mut Vec<Event>,
        ) -> Result<(), Reject> {
            let buyer = self.participants.authorise(actor, Role::Buyer)?.expect("buyers are participants");
            if note.len() > NOTE_BYTES_MAX {
                return Err(Reject::bad_request(format!("field `note` must be at most {NOTE_BYTES_MAX} bytes")));
            }
            crate::text::check_clean("note", note)?;
            self.dispatch_pending(reference);
            let Some((day, line)) = self.dispatch.find(reference).map(|(d, l)| (d, *l)) else {
                return Err(Reject::invalid_state(format!(
                    "no purchase {reference} today or on the previous trading day: \
                     a complaint is filed until the end of the next trading day"
                )));
            };
            if line.voided {
                return Err(Reject::invalid_state(format!("purchase {reference} was voided")));
            }
            let payer = self.participants.payer(line.buyer);
            if buyer != line.buyer && buyer != payer {
                return Err(Reject::forbidden(format!("purchase {reference} is not yours")));
            }
            let done = self.complaints.complained.get(&reference).copied().unwrap_or(0);
            let what = if line.containers().is_some() { "containers" } else { "units" };
            if containers == 0 || containers > line.quantity - done {
                return Err(Reject::quantity_invalid(format!(
                    "containers must be between 1 and the {} {what} bought not yet complained about",
                    line.quantity - done
                )));
            }
            // The amount of the complained containers: the most a credit may be. It fits: the
            // whole purchase's amount did when it was made.
            let units = containers * line.units_per_container as u64;
            let credit_max = line.price.checked_mul(units).expect("part of a purchase's amount");
            let id = self.complaints.next_id;
            self.complaints.next_id += 1;
            *self.complaints.complained.entry(reference).or_default() += containers;
            if reference.lot().is_some() {
                self.complaints.today.entry(line.seller).or_default().complaints += 1;
            }
            let complaint = Complaint {
                id,
                reference,
                day,
                buyer,
                payer,
                seller: line.seller,
                lot: reference.lot(),
                product: line.product,
                grade: line.grade,
                reason,
                containers,
                note: note.to_string(),
                credit_max,
                filed: now,
                decision: None,
            };
            self.complaints.open.insert(id, complaint.clone());
            out.push(Event::ComplaintFiled(Box::new(complaint)));
            Ok(())
        }

        /// `resolve_complaint`: the operator's decision. An accepted credit is booked by clearing
        /// on today's statements: the buyer's firm is credited, the seller pays.
        pub(crate) fn resolve_complaint(
            &mut self,
            actor: Actor,
            id: u64,
            decision: Decision,
            credit: Fen,
            out: &mut Vec<Event>,
        ) -> Result<(), Reject> {
            self.participants.authorise(actor, Role::Operator)?;
            let complaint =
                self.complaints.open.get(&id).ok_or_else(|| Reject::not_found(format!("no open complaint {id}")))?;
            if credit.0 < 0 {
                return Err(Reject::price_invalid("credit must not be negative"));
            }
            if decision == Decision::Rejected && credit.0 != 0 {
                return Err(Reject::price_invalid("a rejected complaint has credit 0"));
            }
            if credit > complaint.credit_max {
                return Err(Reject::price_invalid(format!(
                    "credit must be at most the amount of the complained containers ({})",
                    complaint.credit_max
                )));
            }
            let mut complaint = self.complaints.open.remove(&id).expect("checked");
            complaint.decision = Some((decision, credit));
            if decision == Decision::Accepted && complaint.lot.is_some() {
                let today = self.complaints.today.entry(complaint.seller).or_default();
                today.accepted += 1;
                today.accepted_containers += complaint.containers;
            }
            out.push(Event::ComplaintResolved(Box::new(complaint)));
            Ok(())
        }

        /// `get_quality`: a grower's figures over its last 30 settled trading days.
        pub fn quality(&self, grower: Pk) -> Quality {
            self.complaints.quality(grower)
        }

        /// The open complaints (the operator's queue), oldest first.
        pub fn open_complaints(&self) -> impl Iterator<Item = &Complaint> {
            self.complaints.open.values()
        }

        /// `end_of_day`: the day's sales close into each grower's window; refs of the day that
        /// leaves the core stop counting complained containers.
        pub(crate) fn close_quality_day(&mut self, leaving: Option<Day>) {
            let mut sold: BTreeMap<Pk, (u64, u64)> = BTreeMap::new();
            for lot in self.lots.values().filter(|l| l.sold > 0) {
                let s = sold.entry(lot.grower).or_default();
                s.0 += 1;
                s.1 += lot.sold as u64;
            }
            self.complaints.close_day(self.day, sold);
            if let Some(leaving) = leaving {
                if let Some(d) = self.dispatch.day(leaving) {
                    for line in &d.lines {
                        self.complaints.complained.remove(&line.reference);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_half_even_hundredths_of_the_good_share() {
        assert_eq!(quality_index(0, 0), None);
        assert_eq!(quality_index(40, 0), Some(10_000));
        assert_eq!(quality_index(40, 1), Some(9_750));
        assert_eq!(quality_index(3, 1), Some(6_667));
        assert_eq!(quality_index(2, 5), Some(0));
    }

    #[test]
    fn the_window_keeps_thirty_settled_days() {
        let mut c = Complaints::new();
        let grower = Pk(3);
        for n in 0..40 {
            c.today.entry(grower).or_default().accepted_containers = u64::from(n == 5 || n == 35);
            c.close_day(Day(n), BTreeMap::from([(grower, (1, 10))]));
        }
        let q = c.quality(grower);
        assert_eq!((q.days, q.lots, q.containers_sold, q.accepted_containers), (30, 30, 300, 1));
        assert_eq!(q.qi, Some(9_967));
    }
}
