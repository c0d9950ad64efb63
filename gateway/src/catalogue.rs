//! The day's catalogue as `get_catalogue` and `GET /api/catalogue` serve it (protocol section 11):
//! rendered once per change and shared, so a thousand buyers opening the catalogue of a big
//! hall's day (10,000 lots) cost the sequencer one copy of the lots, not a thousand renderings.
//!
//! The fan-out counts every output that may change a lot (`Status::lots_version`) before any of
//! its replies leave. A request whose cached copy was taken at the current count is served from
//! the cache; otherwise it copies the lots on the sequencer thread (a `Query`, queued behind what
//! came before it) and renders them here, off that thread. A client told `lots_planned` and then
//! asking for the catalogue therefore always sees the plan.

use crate::messages::Status;
use crate::wire::render::{CatalogueClock, DayText, LotJson, Msg};
use huashi_engine::core::lots::Lot;
use huashi_engine::event::Event;
use huashi_engine::reject::{Reject, RejectCode};
use huashi_engine::sequencer::{SequencerHandle, Submission};
use huashi_engine::types::Day;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The catalogue last rendered, and the count of lot changes it was taken at.
#[derive(Default)]
pub struct CatalogueCache {
    rendered: Mutex<Option<Rendered>>,
}

struct Rendered {
    version: u64,
    day: Day,
    /// `{"type":"catalogue","day":…,"clocks":[…]}`.
    body: Arc<String>,
}

/// Whether an engine event may change what a catalogue shows (a lot's status, numbers, place or
/// offer). Generous on purpose: a needless refresh costs one copy, a missed one a stale page.
pub fn changes_lots(event: &Event) -> bool {
    !matches!(
        event,
        Event::OrderAccepted(_)
            | Event::OrderAmended(_)
            | Event::Fill { .. }
            | Event::OrderDone { .. }
            | Event::Cancelled { .. }
            | Event::OrdersCancelled { .. }
            | Event::Traded(_)
            | Event::BookLevel { .. }
            | Event::BookStateChanged { .. }
            | Event::StandingBidAccepted { .. }
            | Event::StandingBidCancelled { .. }
            | Event::StandingBidDropped { .. }
            | Event::ParticipantRegistered { .. }
            | Event::CreditLimitSet { .. }
            | Event::LimitsSet(_)
            | Event::FeesSet { .. }
            | Event::ClockConfigured { .. }
            | Event::ClockPlanSet { .. }
            | Event::OrderDrawn { .. }
    )
}

impl CatalogueCache {
    /// The catalogue of `day` (the current trading day when `None`): from the cache when no lot
    /// changed since it was taken, else copied from the market and rendered.
    pub async fn get(
        &self,
        engine: &SequencerHandle,
        status: &Status,
        day: Option<Day>,
    ) -> Result<Arc<String>, Reject> {
        let version = status.lots_version.load(Ordering::Acquire);
        if let Some(cached) = self.rendered.lock().expect("not poisoned").as_ref() {
            if cached.version == version {
                return check_day(cached.day, day).map(|()| Arc::clone(&cached.body));
            }
        }
        let (tx, rx) = oneshot::channel();
        let copy = Box::new(move |market: &huashi_engine::core::Market| -> huashi_engine::sequencer::Deliver {
            let clocks: Vec<(u16, Vec<Lot>)> = market
                .catalogue()
                .into_iter()
                .map(|(clock, lots)| (clock.0, lots.into_iter().cloned().collect()))
                .collect();
            let taken = (market.day(), clocks);
            Box::new(move || {
                let _ = tx.send(taken);
            })
        });
        engine
            .try_submit(Submission::Query(copy))
            .map_err(|_| Reject::new(RejectCode::Internal, "engine busy, retry"))?;
        let (market_day, clocks) = rx.await.map_err(|_| Reject::new(RejectCode::Internal, "the engine is stopping"))?;
        let clocks = clocks
            .iter()
            .map(|(clock, lots)| CatalogueClock {
                clock: *clock,
                lots: lots.iter().map(|lot| LotJson::new(lot, false)).collect(),
            })
            .collect();
        let body = Arc::new(Msg::Catalogue { day: DayText(market_day), clocks }.text());
        let mut cache = self.rendered.lock().expect("not poisoned");
        if cache.as_ref().is_none_or(|c| c.version <= version) {
            *cache = Some(Rendered { version, day: market_day, body: Arc::clone(&body) });
        }
        check_day(market_day, day).map(|()| body)
    }
}

/// Only the current trading day's catalogue is kept: its lots leave the core at `end_of_day`.
fn check_day(market_day: Day, asked: Option<Day>) -> Result<(), Reject> {
    match asked {
        Some(day) if day != market_day => Err(Reject::not_found(format!(
            "no catalogue for {day}: the catalogue is kept for the current trading day {market_day}"
        ))),
        _ => Ok(()),
    }
}
