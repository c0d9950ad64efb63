//! `huashi demo`: one command that runs a Shanghai flower market a newcomer can watch and join.
//!
//! It starts the server in-process (the same [`Node`] `huashi serve` runs) and then plays
//! every other part over the real protocol, as outside clients would:
//!
//! ```text
//!  operator (operator.rs) ──/ws──┐                      ┌──/feed──▶ report.rs: lines on stdout, the day's tally
//!  growers  (growers.rs)  ──/ws──┼──▶ gateway ─▶ engine ┤           buyers.rs: press `bid` when the price is right
//!  buyers   (buyers.rs)   ──/ws──┤                      └── replies and private reports to each session
//!  books    (books.rs)    ──/ws──┘
//! ```
//!
//! A morning, as a hall runs it (protocol section 11): growers consign lots with their master
//! data; the operator sets the clocks to the demo's speed, plans each clock for a group of
//! products, draws the day's grower order and plans the lots into the catalogue; growers offer
//! some lots for presale and buyers take some; hotel chains leave standing bids and the books take
//! orders in `pre_open`; then the books open, the operator fixes the start time, the clocks start
//! by themselves at that time, buyers (a firm's seats among them) press, and when every lot is
//! done the books close and the day is settled — and the next morning begins.
//! Seeding (catalogue, participants, `demo-tokens.json`) is in market_seed.rs; the participants
//! in roster.rs; prices in products.rs and prices.rs; the protocol clients in client.rs.

mod books;
mod buyers;
mod client;
mod goods;
mod growers;
mod market_seed;
mod money;
mod operator;
mod presales;
mod prices;
mod products;
mod report;
mod roster;

use anyhow::Context;
use books::BooksDesk;
use buyers::Buyer;
use client::{Reports, Session};
use futures_util::future::join_all;
use growers::Grower;
use huashi_engine::types::Day;
use huashi_gateway::config::FileConfig;
use huashi_gateway::{Config, ServeArgs};
use huashi_node::Node;
use money::{grouped, Fen};
use operator::{DayPlan, Operator};
use prices::PriceBoard;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use report::{say, Progress};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, oneshot, watch};

/// Feed events buffered for the simulation's listeners.
const FEED_BACKLOG: usize = 65_536;
/// The lots of a morning the buyers' demand is sized for.
const LOTS_DEFAULT: usize = 60;
const SPEED_MAX: f64 = 1_000.0;
const LOTS_MAX: usize = 5_000;
/// Simulated buyers whose tokens are printed, for a person to watch their accounts.
const BUYERS_SHOWN: usize = 3;

/// `huashi demo` flags.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Address to listen on for HTTP and WebSocket.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Data directory; a second run on the same directory continues the market.
    #[arg(long, value_name = "DIR", default_value = "./huashi-demo-data")]
    pub data_dir: PathBuf,
    /// The operator's login token [default: a random one, printed at start].
    #[arg(long, value_name = "TOKEN")]
    pub operator_token: Option<String>,
    /// How much faster than real time the market runs (1: a real clock's pace; 10, 50: faster).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    /// Lots consigned each morning.
    #[arg(long, value_name = "N", default_value_t = LOTS_DEFAULT)]
    pub lots: usize,
    /// Trading days to run, then stop [default: run until Ctrl-C].
    #[arg(long, value_name = "N")]
    pub days: Option<u64>,
    /// Seed of the simulation's random draws [default: a random one, printed at start].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// The validated flags.
struct Settings {
    speed: f64,
    lots: usize,
    days: Option<u64>,
    seed: u64,
    data_dir: PathBuf,
    operator_token: String,
}

impl Settings {
    fn from_args(args: &DemoArgs) -> anyhow::Result<Settings> {
        if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= SPEED_MAX) {
            anyhow::bail!("--speed: must be a number above 0 and at most {SPEED_MAX}");
        }
        if args.lots == 0 || args.lots > LOTS_MAX {
            anyhow::bail!("--lots: must be between 1 and {LOTS_MAX}");
        }
        if args.days == Some(0) {
            anyhow::bail!("--days: must be at least 1 (leave it out to run until Ctrl-C)");
        }
        let operator_token = match &args.operator_token {
            Some(token) if token.is_empty() => anyhow::bail!("--operator-token: must not be empty"),
            Some(token) => token.clone(),
            None => format!("{:032x}", rand::random::<u128>()),
        };
        Ok(Settings {
            speed: args.speed,
            lots: args.lots,
            days: args.days,
            seed: args.seed.unwrap_or_else(|| rand::random::<u64>() % 1_000_000),
            data_dir: args.data_dir.clone(),
            operator_token,
        })
    }

    /// A pause of `seconds` at speed 1, at this speed, never under `floor_ms`.
    fn pause(&self, seconds: f64, floor_ms: u64) -> Duration {
        Duration::from_secs_f64(seconds / self.speed).max(Duration::from_millis(floor_ms))
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    // The demo's story is on stdout; logs only for warnings.
    crate::serve::init_logs("warn");
    let settings = Settings::from_args(&args)?;
    let serve_args = ServeArgs {
        listen: Some(args.listen.clone()),
        data_dir: Some(args.data_dir.clone()),
        operator_token: Some(settings.operator_token.clone()),
        clocks: Some(4),
        config: None,
        // HUASHI_FAULT is a hook for `huashi serve` tests only.
        fault: None,
        // The demo runs alone.
        ..ServeArgs::default()
    };
    let config = Config::from_parts(serve_args, FileConfig::default())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("demo")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(settings, config))
}

/// Runs the server and the simulation until the days are done or Ctrl-C; then stops the
/// simulation and shuts the server down in order (it snapshots the market).
async fn demo(settings: Settings, config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let node = Node::start(listener, config).await?;
    let addr = node.local_addr();
    let first_day = node.day().to_string();
    let (close_server, closed) = oneshot::channel::<()>();
    let mut server = tokio::spawn(node.serve(async move {
        let _ = closed.await;
    }));
    say(&format!("huashi demo: market open at http://{addr}/"));
    say(&format!("  operator token: {}", settings.operator_token));
    let (stop_tx, stop) = watch::channel(false);
    let (feed, _) = broadcast::channel(FEED_BACKLOG);
    let progress = Progress::default();
    let prices = Arc::new(Mutex::new(PriceBoard::load(&settings.data_dir)));
    let first_snapshot = feed.subscribe();
    tokio::spawn(report::run(progress.clone(), prices.clone(), feed.subscribe(), stop.clone()));
    tokio::spawn(client::run_feed(addr, feed.clone(), stop.clone()));
    let market = Market { settings, addr, feed, stop: stop.clone(), progress, prices };
    let outcome = tokio::select! {
        result = market.simulate(first_snapshot, first_day) => result,
        _ = crate::serve::stop_signal() => {
            say("huashi demo: stopping — closing the market…");
            Ok(())
        }
        joined = &mut server => {
            let _ = stop_tx.send(true);
            return match joined {
                Ok(Ok(())) => Err(anyhow::anyhow!("the server stopped by itself")),
                Ok(Err(error)) => Err(anyhow::Error::new(error).context("the server failed")),
                Err(error) => Err(anyhow::anyhow!("the server task failed: {error}")),
            };
        }
    };
    let _ = stop_tx.send(true);
    let _ = close_server.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(anyhow::Error::new(error).context("the server did not shut down cleanly")),
        Err(error) => anyhow::bail!("the server task failed: {error}"),
    }
    if let Err(error) = &outcome {
        tracing::error!("the simulation stopped: {error:#}");
    }
    say(&format!(
        "huashi demo: market closed; its data is in {} — run the same command again to continue it",
        market.settings.data_dir.display()
    ));
    outcome
}

/// Everything a morning needs.
struct Market {
    settings: Settings,
    addr: SocketAddr,
    feed: broadcast::Sender<Arc<Value>>,
    stop: watch::Receiver<bool>,
    progress: Progress,
    prices: Arc<Mutex<PriceBoard>>,
}

/// The simulated participants, logged in.
struct Cast {
    operator: Operator,
    growers: Arc<Vec<Grower>>,
    buyers: Arc<Vec<Arc<Buyer>>>,
    desk: Arc<BooksDesk>,
    /// The cold-chain company's session, when its token is known.
    logistics: Option<Arc<Session>>,
}

impl Market {
    fn prices(&self) -> std::sync::MutexGuard<'_, PriceBoard> {
        self.prices.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn simulate(&self, mut first: broadcast::Receiver<Arc<Value>>, first_day: String) -> anyhow::Result<()> {
        let snapshot = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match first.recv().await {
                    Ok(event) if event["type"] == "snapshot" => return Some(event),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
        .context("the feed sent no snapshot")?;
        drop(first);
        let cast = self.seat_the_cast(&snapshot).await?;
        self.learn_market_prices().await;
        let mut day = first_day;
        if let Some(settled) = cast.operator.tidy_up(&snapshot).await {
            say(&format!("  settled the day a previous run left open: {}", settled_words(&settled)));
            day = settled["next_day"].as_str().unwrap_or(&day).to_string();
        }
        tokio::time::sleep(self.settings.pause(3.0, 50)).await;
        let mut morning = 1;
        while self.settings.days.is_none_or(|days| morning <= days) {
            day = self.morning(morning, &day, &cast).await?;
            morning += 1;
            if self.settings.days.is_none_or(|days| morning <= days) {
                tokio::time::sleep(self.settings.pause(3.0, 20)).await;
            }
        }
        for session in cast
            .growers
            .iter()
            .map(|g| &g.session)
            .chain(cast.buyers.iter().map(|b| &b.session))
            .chain([&cast.operator.session])
        {
            session.close().await;
        }
        Ok(())
    }

    /// Logs the operator in, seeds the catalogue and the participants, and logs every grower
    /// and buyer in; prints what a person needs to join.
    async fn seat_the_cast(&self, snapshot: &Value) -> anyhow::Result<Cast> {
        let (session, _, reports) = Session::login(self.addr, &self.settings.operator_token, "operator").await?;
        watch_reports("operator", reports);
        market_seed::ensure_catalogue(&session).await;
        if let Some(reply) = session.expect(serde_json::json!({"type": "get_products"}), "products").await {
            products::learn_scales(&reply);
        }
        let mut tokens = market_seed::Tokens::load(&self.settings.data_dir)?;
        let seats = market_seed::register_participants(&session, &mut tokens).await?;
        let mut growers = Vec::new();
        for (index, token) in &seats.growers {
            let spec = &roster::GROWERS[*index];
            match Session::login(self.addr, token, spec.id).await {
                Ok((session, _, reports)) => {
                    let grower = Grower { spec, session };
                    grower.watch_reports(reports);
                    growers.push(grower);
                }
                Err(error) => tracing::warn!("{error:#}; {} sits this run out", spec.id),
            }
        }
        let mut buyers = Vec::new();
        for (index, (spec, token)) in seats.buyers.iter().enumerate() {
            match Session::login(self.addr, token, spec.id).await {
                Ok((session, _, reports)) => {
                    let buyer = Arc::new(Buyer::new(spec, session, self.settings.seed ^ (index as u64 + 1) << 20));
                    tokio::spawn(buyer.clone().run(self.feed.subscribe(), reports, self.stop.clone()));
                    buyers.push(buyer);
                }
                Err(error) => tracing::warn!("{error:#}; {} sits this run out", spec.id),
            }
        }
        self.print_seats(&seats, &buyers, growers.len());
        if !matches!(client::http_get(self.addr, "/").await, Ok((200, _))) {
            say(&format!(
                "  (this build serves no web app at / yet: any WebSocket client on ws://{}/ws speaks the protocol)",
                self.addr
            ));
        }
        let clocks = snapshot["clocks"].as_array().map_or(4, Vec::len).clamp(1, u16::MAX as usize) as u16;
        let growers = Arc::new(growers);
        let buyers = Arc::new(buyers);
        let nonce = rand::random::<u32>();
        let desk = Arc::new(BooksDesk::new(growers.clone(), buyers.clone(), self.prices.clone(), nonce));
        let logistics = match &seats.logistics {
            Some(token) => match Session::login(self.addr, token, goods::LOGISTICS_ID).await {
                Ok((session, _, _)) => Some(session),
                Err(error) => {
                    tracing::warn!("{error:#}; the goods stay at the clocks this run");
                    None
                }
            },
            None => None,
        };
        Ok(Cast { operator: Operator { session, clocks }, growers, buyers, desk, logistics })
    }

    fn print_seats(&self, seats: &market_seed::Seats, buyers: &[Arc<Buyer>], growers: usize) {
        let s = &self.settings;
        let days = s.days.map_or("until Ctrl-C".to_string(), |d| format!("{d} day{}", if d == 1 { "" } else { "s" }));
        say(&format!(
            "  data {} · speed {}× · {} lots a morning · {days} · seed {}",
            s.data_dir.display(),
            s.speed,
            s.lots,
            s.seed
        ));
        match &seats.visitor {
            Some(token) => say(&format!(
                "  join as a buyer: open http://{}/ and log in with the token of {} · token {token} · credit {} CNY, a seat nobody else uses",
                self.addr,
                roster::VISITOR.id,
                grouped(Fen(roster::VISITOR.credit_cny * 100))
            )),
            None => say("  the visitor's seat has no token in demo-tokens.json: use a simulated buyer's below"),
        }
        let shown: Vec<String> = buyers
            .iter()
            .take(BUYERS_SHOWN)
            .filter_map(|b| {
                let token = seats.buyers.iter().find(|(spec, _)| spec.id == b.spec.id).map(|(_, t)| t)?;
                Some(format!("{} {token}", b.spec.id))
            })
            .collect();
        if !shown.is_empty() {
            say(&format!("  simulated buyers (log in as one to watch it trade): {}", shown.join(" · ")));
        }
        for (firm, token) in &seats.firms {
            let seated: Vec<String> = buyers
                .iter()
                .filter(|b| b.spec.firm.is_some_and(|f| f.id == firm.id))
                .map(|b| format!("{} (daily limit {})", b.spec.id, grouped(Fen(b.spec.daily_limit_cny * 100))))
                .collect();
            say(&format!(
                "  buyer firm {} ({}, credit {} CNY) buys through its seats {} · log in as the firm to watch them all: token {token}",
                firm.name,
                firm.id,
                grouped(Fen(firm.credit_cny * 100)),
                seated.join(", ")
            ));
        }
        if let Some(token) = &seats.logistics {
            say(&format!(
                "  cold-chain staff ({}): open http://{}/#/logistics on a tablet and log in · token {token}",
                goods::LOGISTICS_NAME,
                self.addr
            ));
        }
        let known = seats.growers.len()
            + seats.buyers.len()
            + seats.firms.len()
            + usize::from(seats.visitor.is_some())
            + usize::from(seats.logistics.is_some());
        say(&format!(
            "  {growers} growers and {} buyers at work · {} participants registered now, {} already known · tokens in {}",
            buyers.len(),
            seats.registered,
            known.saturating_sub(seats.registered),
            s.data_dir.join(market_seed::TOKENS_FILE).display()
        ));
        if !seats.lost.is_empty() {
            say(&format!("  no token for {} (demo-tokens.json lost?): they sit out", seats.lost.join(", ")));
        }
    }

    /// Takes VWAPs from `/api/market` for cells the demo has no price for yet.
    async fn learn_market_prices(&self) {
        let Ok((200, body)) = client::http_get(self.addr, "/api/market").await else { return };
        let Ok(market) = serde_json::from_str::<Value>(&body) else { return };
        let mut prices = self.prices();
        for c in market["cells"].as_array().into_iter().flatten() {
            let cell = products::cell(c["product"].as_str().unwrap_or(""), c["grade"].as_str().unwrap_or(""));
            if let (Some(cell), Some(vwap)) = (cell, Fen::of(&c["vwap"])) {
                prices.learn_recent(cell, vwap);
            }
        }
    }

    /// One trading day, from consignment to settlement; returns the next day.
    async fn morning(&self, number: u64, day: &str, cast: &Cast) -> anyhow::Result<String> {
        let of = self.settings.days.map_or(String::new(), |d| format!(" of {d}"));
        say(&format!("── morning {number}{of} · trading day {day} ──────────────────────────────"));
        let trading_day = Day::parse(day).with_context(|| format!("the market's day {day:?} is not a date"))?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed ^ day_hash(day));
        self.progress.tally().begin_day();
        let fair: BTreeMap<products::Cell, f64> = {
            let mut prices = self.prices();
            prices.new_day(&mut rng);
            products::cells().map(|cell| (cell, prices.fair(cell))).collect()
        };
        let scale = self.settings.lots as f64 / LOTS_DEFAULT as f64;
        join_all(cast.buyers.iter().map(|b| b.new_day(&fair, day_hash(day), scale))).await;
        goods::set_destinations(&cast.buyers).await;

        let plans = growers::plan_morning(self.settings.lots, trading_day, &cast.growers, &self.prices(), &mut rng);
        let consigned = growers::consign_all(&cast.growers, plans).await;
        let containers: u32 = consigned.iter().map(|l| l.containers).sum();
        let varieties: std::collections::BTreeSet<&str> = consigned.iter().map(|l| l.master.variety).collect();
        say(&format!(
            "  growers consigned {} lots ({containers} containers, {} cultivars)",
            consigned.len(),
            varieties.len()
        ));
        let operator = &cast.operator;
        operator.configure_clocks(self.settings.speed).await;
        let plan = operator.plan_day().await.context("the market refused to plan the day")?;
        for line in report::plan_lines(&plan) {
            say(&line);
        }

        // Presales before the clocks: offers on planned lots, in catalogue order.
        let by_id: BTreeMap<u64, &growers::ConsignedLot> = consigned.iter().map(|l| (l.lot_id, l)).collect();
        let planned: Vec<growers::ConsignedLot> =
            plan.lot_ids().filter_map(|id| by_id.get(&id).map(|l| (*l).clone())).collect();
        let offers = presales::offer(&cast.growers, &planned, &self.prices, &mut rng).await;
        let presold = presales::take(&cast.buyers, offers, &mut rng).await;
        for outcome in &presold {
            say(&report::presale_line(outcome));
        }

        operator.set_books("pre_open").await;
        let opening = cast.desk.opening_orders(&mut rng).await;
        let standing: usize = join_all(cast.buyers.iter().map(|b| b.leave_standing_bids())).await.into_iter().sum();
        say(&format!(
            "  viewing: hotel chains left {standing} standing bids · {opening} orders wait in the pre-open books"
        ));
        tokio::time::sleep(self.settings.pause(3.0, 20)).await;
        operator.set_books("open").await;
        let start = self.start_the_clocks(operator, &plan, trading_day).await;

        let (desk_stop, desk_stopped) = watch::channel(false);
        let desk_task = tokio::spawn(trade_books(cast.desk.clone(), self.settings.speed, rng.gen(), desk_stopped));
        self.wait_for_auction(operator, &plan, start).await;
        let _ = desk_stop.send(true);
        let _ = desk_task.await;
        operator.set_books("closed").await;
        self.print_day_tally();
        if !presold.is_empty() {
            say(&report::presales_total(&presold));
        }
        self.after_the_sale(cast, &mut rng).await;
        let settled = operator.end_of_day().await.context("the day did not settle")?;
        say(&format!("  day {day} settled: {}", settled_words(&settled)));
        self.print_firms(cast, day).await;
        self.print_index(day).await;
        self.prices().settle_day();
        Ok(settled["next_day"].as_str().context("day_settled without next_day")?.to_string())
    }

    /// The goods through the cold chain to the buyers, and one complaint corrected.
    async fn after_the_sale(&self, cast: &Cast, rng: &mut ChaCha8Rng) {
        let Some(logistics) = &cast.logistics else { return };
        let moved = goods::move_the_goods(logistics, rng).await;
        say(&format!(
            "  cold chain: {} of {} purchases delivered ({} docks and the hotels' addresses), each read in and out of the cold store",
            moved.delivered, moved.lines, moved.docks
        ));
        if let Some((reference, lot, temperature, max)) = &moved.alarm {
            let lot = lot.map_or(String::new(), |l| format!(" (lot {l}, trace at http://{}/lot/{l})", self.addr));
            say(&format!("  cold-chain alarm: {reference}{lot} read {temperature} °C in cold store 2, above the {max} °C maximum; its buyer was told"));
        }
        let alarm_ref = moved.alarm.as_ref().map(|(r, ..)| r.as_str());
        if let Some(line) = goods::one_complaint(self.addr, &cast.buyers, &cast.operator.session, alarm_ref).await {
            say(&line);
        }
    }

    /// Fixes the hour the planned clocks start: a few seconds ahead of the engine's time, in
    /// market time (+08:00), sent as each clock plan's `start_time`; the clocks then start by
    /// themselves. Returns when they will (µs since the epoch), or `None` when the operator
    /// had to start them by hand: a start time is a time of the trading day, so on a day the
    /// demo reaches ahead of the calendar (it runs days faster than they pass) no start time
    /// comes before that date.
    async fn start_the_clocks(&self, operator: &Operator, plan: &DayPlan, day: Day) -> Option<u64> {
        let clocks: Vec<u16> = plan.busy_clocks().collect();
        if clocks.is_empty() {
            return None;
        }
        let names: Vec<String> = clocks.iter().map(u16::to_string).collect();
        let names = names.join(", ");
        let now = match operator.engine_time().await {
            Some(now) => now,
            None => wall_clock_us(),
        };
        // Room for the four plans to be set before the time comes, even on a loaded machine.
        let lead = self.settings.pause(5.0, 3_000).as_micros() as u64;
        // Whole seconds: a start time has no finer grain.
        let at = (now + lead).div_ceil(1_000_000) * 1_000_000;
        let (_, seconds) = operator::market_time(at);
        let start_time = operator::time_of_day(seconds);
        operator.plan_clocks(Some(&start_time)).await;
        let planned = operator::market_instant(day, seconds);
        if planned <= at {
            // On a day behind the calendar the time has passed: the clocks start at once.
            say(&format!("  the hall opens at {start_time} (+08:00): clocks {names} start by themselves"));
            return Some(planned.max(now));
        }
        say(&format!(
            "  trading day {day} is ahead of the calendar (the demo runs days faster than they pass): a start at \
             {start_time} would come only on {day}; the operator starts clocks {names} by hand"
        ));
        for clock in clocks {
            operator.start_clock(clock).await;
        }
        None
    }

    /// Waits until every lot planned is done and its clock at rest. The feed is the source;
    /// `get_lots` is asked now and then in case the feed missed something. A clock that does not
    /// start at its planned time (`start`), or that is found idle with lots still queued after
    /// it started (someone halted it), is started by hand; a market whose feed falls silent
    /// altogether is halted and its remaining lots withdrawn.
    async fn wait_for_auction(&self, operator: &Operator, plan: &DayPlan, start: Option<u64>) {
        let lots: Vec<u64> = plan.lot_ids().collect();
        let lines: BTreeMap<u16, Vec<u64>> =
            plan.clocks.iter().map(|(c, p)| (*c, p.lots.iter().map(|(_, lot, _)| *lot).collect())).collect();
        let poll = self.settings.pause(2.0, 50).min(Duration::from_secs(2));
        let stall = self.settings.pause(60.0, 10_000);
        // A planned start is a journaled tick: it comes on time unless the engine is stuck.
        let late_us = start.map(|s| s + Duration::from_secs(5).as_micros() as u64);
        let mut last_count = u64::MAX;
        let mut last_change = tokio::time::Instant::now();
        loop {
            let (done, count) = {
                let tally = self.progress.tally();
                let done = lots.iter().all(|l| tally.is_finished(*l)) && lines.keys().all(|c| tally.is_idle(*c as u64));
                (done, tally.events)
            };
            if done {
                return;
            }
            if count != last_count {
                last_count = count;
                last_change = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = self.progress.changed.notified() => continue,
                _ = tokio::time::sleep(poll) => {}
            }
            let server_lots = operator.lots().await;
            let unfinished: Vec<(u64, &str)> = server_lots
                .iter()
                .filter_map(growers::lot_status)
                .filter(|(id, status)| lots.contains(id) && matches!(*status, "consigned" | "queued" | "on_clock"))
                .collect();
            if unfinished.is_empty() {
                return;
            }
            let before_start = late_us.is_some_and(|late| wall_clock_us() < late);
            if last_change.elapsed() > stall && !before_start {
                say("  the market stopped moving: halting the clocks and withdrawing what is left");
                for clock in lines.keys() {
                    operator.halt_clock(*clock).await;
                }
                for (lot_id, _) in unfinished {
                    let msg = serde_json::json!({"type": "withdraw_lot", "lot_id": lot_id});
                    operator.session.expect(msg, "lot_withdrawn").await;
                }
                return;
            }
            for (clock, line) in &lines {
                let waiting = unfinished.iter().any(|(id, status)| *status == "queued" && line.contains(id));
                let (idle, started) = {
                    let tally = self.progress.tally();
                    (tally.is_idle(*clock as u64), tally.has_started(*clock as u64))
                };
                let running = unfinished.iter().any(|(id, status)| *status == "on_clock" && line.contains(id));
                // Not started yet: before its time, or started by hand and not yet on the feed.
                if !waiting || !idle || running || (!started && (before_start || start.is_none())) {
                    continue;
                }
                if !started {
                    tracing::warn!(clock, "unexpected: the clock did not start by itself at its planned time");
                }
                let msg = serde_json::json!({"type": "start_clock", "clock": clock});
                match operator.session.request(msg.clone()).await {
                    Ok(_) if started => say(&format!("  clock {clock} was idle with lots waiting: started it again")),
                    Ok(_) => say(&format!("  clock {clock} did not start at its time: the operator started it")),
                    Err(rejected) if rejected.is("invalid_state") => {}
                    Err(rejected) => client::unexpected("operator", &msg, &rejected),
                }
            }
        }
    }

    /// What each firm's seats bought today, from the firm's statement; and the first purchase
    /// the market refused a seat for credit (its daily limit, usually), once a day per seat.
    async fn print_firms(&self, cast: &Cast, day: &str) {
        for buyer in cast.buyers.iter().filter(|b| b.spec.firm.is_some()) {
            if let Some(refusal) = buyer.refusal() {
                say(&format!("  seat {} was refused a purchase: {refusal}", buyer.spec.id));
            }
        }
        for firm in &roster::FIRMS {
            let msg = serde_json::json!({"type": "get_statement", "day": day, "participant": firm.id});
            let statement = match cast.operator.session.request(msg.clone()).await {
                Ok(statement) if statement["type"] == "statement" => statement,
                Ok(reply) => {
                    tracing::warn!(request = %msg, reply = %reply, "unexpected reply to get_statement");
                    continue;
                }
                // No trade of the firm's today: nothing to say.
                Err(rejected) if rejected.is("not_found") => continue,
                Err(rejected) => {
                    client::unexpected("operator", &msg, &rejected);
                    continue;
                }
            };
            let (line, strays) = report::seat_purchases(firm, &statement);
            say(&line);
            for stray in strays {
                tracing::warn!(firm = firm.id, line = %stray, "unexpected: a line of the firm's statement names none of its seats");
            }
        }
    }

    fn print_day_tally(&self) {
        let tally = self.progress.tally();
        for (clock, c) in &tally.clocks {
            say(&format!(
                "  clock {clock}: {} lot{} — {} sold, {} partly sold, {} unsold — {} CNY",
                c.lots,
                if c.lots == 1 { "" } else { "s" },
                c.sold_out,
                c.partly,
                c.unsold,
                grouped(c.amount)
            ));
        }
        for (symbol, b) in &tally.books {
            let unit = products::units(products::book_product(symbol).map_or("unit", |p| p.unit));
            let range = match (b.low, b.high) {
                (Some(low), Some(high)) if low != high => format!(" at {low}–{high}"),
                (Some(low), _) => format!(" at {low}"),
                _ => String::new(),
            };
            say(&format!(
                "  book {symbol}: {} trades, {} {unit}{range} — {} CNY",
                b.trades,
                grouped(Fen(b.units as i64 * 100)).trim_end_matches(".00"),
                grouped(b.amount)
            ));
        }
        if tally.books.is_empty() {
            say("  books: no trades today");
        }
    }

    /// The index closes the feed published for `day`; else `/api/index`; else a note.
    async fn print_index(&self, day: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let closes = self.progress.tally().index_closes.get(day).cloned();
            if let Some(closes) = closes.filter(|c| !c.is_empty()) {
                let words: Vec<String> = closes.iter().map(|(code, value)| format!("{code} {value}")).collect();
                say(&format!("  index close: {}", words.join(" · ")));
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Ok((200, body)) = client::http_get(self.addr, "/api/index").await {
            if let Ok(index) = serde_json::from_str::<Value>(&body) {
                let words: Vec<String> = index["latest"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| Some(format!("{} {}", v["code"].as_str()?, v["value"].as_str()?)))
                    .collect();
                if !words.is_empty() {
                    say(&format!("  index: {}", words.join(" · ")));
                    return;
                }
            }
        }
        say("  index: not published by this server yet");
    }
}

/// Continuous book trading until `stop`: an order every second and a half at speed 1.
async fn trade_books(desk: Arc<BooksDesk>, speed: f64, seed: u64, mut stop: watch::Receiver<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mean = (1.5 / speed).max(0.02);
    loop {
        let pause = Duration::from_secs_f64(mean * rng.gen_range(0.5..1.5));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        desk.next_order(&mut rng).await;
    }
}

/// Reads a session's private reports, noting errors nobody asked for.
fn watch_reports(who: &'static str, mut reports: Reports) {
    tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            if report["type"] == "error" {
                tracing::warn!(who, report = %report, "unexpected error report");
            }
        }
    });
}

/// `day_settled` in words: trades, turnover and fees. The test suite reads this line.
fn settled_words(settled: &Value) -> String {
    let money = |field: &str| settled[field].as_str().unwrap_or("?").to_string();
    format!(
        "{} trades, turnover {} CNY, fees {} CNY (next day {})",
        settled["trades"].as_u64().map_or("?".to_string(), |n| n.to_string()),
        money("turnover"),
        money("fees"),
        settled["next_day"].as_str().unwrap_or("?")
    )
}

/// The wall clock, µs since the epoch: the engine's clock on this same machine.
fn wall_clock_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// A day's share of the seed: FNV-1a of its text.
fn day_hash(day: &str) -> u64 {
    day.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
