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
use huashi_engine::types::{Day, LotId};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// The catalogue last rendered, and the count of lot changes it was taken at.
#[derive(Default)]
pub struct CatalogueCache {
    rendered: Mutex<Option<Rendered>>,
    /// Held while one request copies and renders: when a thousand screens ask at once after a
    /// change, one renders and the others wait for its copy instead of each making their own.
    rendering: tokio::sync::Mutex<()>,
}

struct Rendered {
    version: u64,
    day: Day,
    body: Catalogue,
}

/// A rendered catalogue, shared by every reader: `{"type":"catalogue","day":…,"clocks":[…]}`,
/// and the same gzip-compressed for HTTP readers that accept it (a big hall's day is megabytes of
/// JSON, a tenth of that compressed, and every screen in the hall fetches it when it changes).
#[derive(Clone)]
pub struct Catalogue {
    pub json: bytes::Bytes,
    pub gzip: bytes::Bytes,
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
    pub async fn get(&self, engine: &SequencerHandle, status: &Status, day: Option<Day>) -> Result<Catalogue, Reject> {
        let version = status.lots_version.load(Ordering::Acquire);
        if let Some(cached) = self.fresh(version) {
            return check_day(cached.0, day).map(|()| cached.1);
        }
        let _rendering = self.rendering.lock().await;
        // Another request may have rendered it while this one waited.
        if let Some(cached) = self.fresh(version) {
            return check_day(cached.0, day).map(|()| cached.1);
        }
        let (market_day, count, lots) = copy_lots(engine).await?;
        // Megabytes of JSON and their compression: off the async workers, which serve the feed and
        // every other request meanwhile.
        let body = tokio::task::spawn_blocking(move || render(market_day, count, &lots))
            .await
            .map_err(|_| Reject::new(RejectCode::Internal, "rendering the catalogue failed"))?;
        let mut cache = self.rendered.lock().expect("not poisoned");
        if cache.as_ref().is_none_or(|c| c.version <= version) {
            *cache = Some(Rendered { version, day: market_day, body: body.clone() });
        }
        check_day(market_day, day).map(|()| body)
    }
}

/// The catalogue of the copied lots: each clock's lots by position, every clock `1..=clocks`
/// listed; the JSON and its gzip.
fn render(day: Day, clocks: u16, lots: &[Lot]) -> Catalogue {
    let mut by_clock: Vec<Vec<&Lot>> = vec![Vec::new(); clocks as usize];
    for lot in lots {
        let clock = lot.clock.expect("catalogue lots have a clock").0;
        by_clock[clock as usize - 1].push(lot);
    }
    let clocks = by_clock
        .into_iter()
        .enumerate()
        .map(|(i, mut lots)| {
            lots.sort_unstable_by_key(|l| l.position);
            CatalogueClock { clock: i as u16 + 1, lots: lots.into_iter().map(|lot| LotJson::new(lot, false)).collect() }
        })
        .collect();
    let json = Msg::Catalogue { day: DayText(day), clocks }.text();
    let gzip = compress(json.as_bytes());
    Catalogue { json: bytes::Bytes::from(json), gzip: bytes::Bytes::from(gzip) }
}

/// gzip at the fastest level: the catalogue is compressed once per change, and it is mostly
/// repeated keys.
fn compress(json: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 8), flate2::Compression::fast());
    encoder.write_all(json).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Lots copied per query: about a quarter of a millisecond of the sequencer's time.
const LOTS_PER_COPY: usize = 1_000;
/// Lots looked at per query (those not in the catalogue are passed over).
const LOTS_SEEN_PER_COPY: usize = 8_000;

/// The day's catalogue lots (those with a place on a clock), copied in slices of
/// `LOTS_PER_COPY` so that no one query holds the sequencer long. Slices taken at different
/// moments are each a lot as it was then, all taken after the request came; a day that ends
/// halfway starts the copy again.
async fn copy_lots(engine: &SequencerHandle) -> Result<(Day, u16, Vec<Lot>), Reject> {
    let mut lots = Vec::new();
    let mut from = 0u64;
    let mut day = None;
    loop {
        let (tx, rx) = oneshot::channel();
        let copy = Box::new(move |market: &huashi_engine::core::Market| -> huashi_engine::sequencer::Deliver {
            let mut slice = Vec::new();
            let mut next = None;
            for (seen, (id, lot)) in market.lots().range(LotId(from)..).enumerate() {
                if slice.len() == LOTS_PER_COPY || seen == LOTS_SEEN_PER_COPY {
                    next = Some(id.0);
                    break;
                }
                if lot.clock.is_some() && lot.position.is_some() {
                    slice.push(lot.clone());
                }
            }
            let taken = (market.day(), market.clocks().len() as u16, slice, next);
            Box::new(move || {
                let _ = tx.send(taken);
            })
        });
        engine
            .try_submit(Submission::Query(copy))
            .map_err(|_| Reject::new(RejectCode::Internal, "engine busy, retry"))?;
        let (slice_day, clocks, slice, next) =
            rx.await.map_err(|_| Reject::new(RejectCode::Internal, "the engine is stopping"))?;
        if day.is_some_and(|d| d != slice_day) {
            // The day ended halfway: its lots are gone, start again.
            lots.clear();
            from = 0;
            day = Some(slice_day);
            continue;
        }
        day = Some(slice_day);
        lots.extend(slice);
        match next {
            Some(next) => from = next,
            None => return Ok((slice_day, clocks, lots)),
        }
    }
}

impl CatalogueCache {
    /// The cached catalogue, if it was taken at `version` or later.
    fn fresh(&self, version: u64) -> Option<(Day, Catalogue)> {
        let cached = self.rendered.lock().expect("not poisoned");
        cached.as_ref().filter(|c| c.version >= version).map(|c| (c.day, c.body.clone()))
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
