//! Configuration in two steps (style.md): the raw inputs — `huashi serve` flags ([`ServeArgs`]) and
//! an optional TOML file ([`FileConfig`]) — are validated once into a [`Config`] whose invariants
//! hold everywhere after. Flags override the file; the environment is read only here (clap's
//! `env` for `HUASHI_OPERATOR_TOKEN`, and for `HUASHI_FAULT`, the testing hook).

use huashi_engine::command::ClockSettings;
use huashi_engine::core::auction::{PHASE_MS_MAX, TICK_MS_MAX};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::limits::{MarketLimits, MarketLimitsPatch};
use huashi_engine::journal::{Durability, SEGMENT_BYTES_DEFAULT};
use huashi_engine::types::Fen;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// `huashi serve` flags. Every flag is optional here so that a value from `--config` can fill it;
/// the defaults apply in [`Config::load`].
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on for HTTP and WebSocket [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory: journal and snapshots [default: ./huashi-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The market operator's login token (required).
    #[arg(long, env = "HUASHI_OPERATOR_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub operator_token: Option<String>,
    /// Number of Dutch clocks of a new market [default: 4].
    #[arg(long, value_name = "N")]
    pub clocks: Option<u16>,
    /// TOML file with fees, clock defaults and limits; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// NATS servers of the hall's JetStream cluster, comma separated: run as a replica set
    /// (docs/cluster.md). Without it the market runs alone.
    #[arg(long, value_name = "URL[,URL…]")]
    pub nats: Option<String>,
    /// The hall this node belongs to (with --nats): its stream is HUASHI_<HALL>.
    #[arg(long, value_name = "NAME")]
    pub hall: Option<String>,
    /// The URL other nodes and clients reach this node at [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// How long a leader's lease lasts unrenewed, ms [default: 3000].
    #[arg(long, value_name = "MS")]
    pub lease_ttl_ms: Option<u64>,
    /// Testing hook: a fault to inject, e.g. `panic:sequencer:seq=12` (docs/gateway.md).
    #[arg(long, env = "HUASHI_FAULT", hide = true, value_name = "FAULT")]
    pub fault: Option<String>,
}

/// The TOML file, as written. Unknown keys are refused so a typo is not silently ignored.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub clocks: Option<u16>,
    #[serde(default)]
    pub fees: FileFees,
    #[serde(default)]
    pub clock: FileClock,
    #[serde(default)]
    pub limits: FileLimits,
    /// The core's limits (`set_limits`), seeding a new data directory only.
    #[serde(default)]
    pub market_limits: MarketLimitsPatch,
    #[serde(default)]
    pub engine: FileEngine,
    #[serde(default)]
    pub cluster: FileCluster,
}

/// `[cluster]`: the hall's NATS JetStream cluster (see `ServeArgs`' flags of the same names).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileCluster {
    pub nats: Option<String>,
    pub hall: Option<String>,
    pub advertise: Option<String>,
    pub lease_ttl_ms: Option<u64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileEngine {
    /// `"fsync"` (default) or `"none"`: never sync the journal. `none` breaks the protocol's
    /// promise that a reported change survives a crash; it exists to measure the gateway alone.
    pub durability: Option<String>,
    /// Take a snapshot after this many commands.
    pub snapshot_every: Option<u64>,
    /// Size of a journal segment file, bytes (default 64 MiB).
    pub segment_bytes: Option<u64>,
}

/// Decimals in the file may be written as strings (`"0.50"`, exact) or numbers.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum FileDecimal {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl FileDecimal {
    fn to_decimal(&self, field: &str) -> Result<Decimal, ConfigError> {
        let text = match self {
            FileDecimal::Text(text) => text.clone(),
            FileDecimal::Integer(n) => n.to_string(),
            FileDecimal::Float(x) => x.to_string(),
        };
        Decimal::from_str_exact(text.trim())
            .map_err(|_| ConfigError::invalid(field, format!("{text:?} is not a decimal")))
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileFees {
    /// Grower's commission in percent of the sale amount (default 5).
    pub commission_pct: Option<FileDecimal>,
    /// Buyer's fee per container bought at the clock, CNY (default 0.50).
    pub clock_fee_per_container: Option<FileDecimal>,
    /// Buyer's fee in percent of a book purchase (default 0.1).
    pub book_fee_pct: Option<FileDecimal>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileClock {
    pub step: Option<FileDecimal>,
    pub tick_ms: Option<u32>,
    pub pre_roll_ms: Option<u32>,
    pub pause_ms: Option<u32>,
    pub restart_ticks: Option<u32>,
    pub multi_buy_ms: Option<u32>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub sessions_max: Option<usize>,
    pub feed_subscribers_max: Option<usize>,
    pub session_queue_max: Option<usize>,
    pub session_inflight_max: Option<usize>,
    pub feed_backlog_max: Option<usize>,
    pub rate_per_second: Option<u32>,
    pub rate_burst: Option<u32>,
    pub strikes_max: Option<u32>,
    pub strike_window_ms: Option<u64>,
    pub frame_bytes_max: Option<usize>,
    pub write_buffer_bytes: Option<usize>,
    pub write_buffer_bytes_max: Option<usize>,
    pub write_timeout_ms: Option<u64>,
    pub login_timeout_ms: Option<u64>,
    pub engine_queue_depth_max: Option<usize>,
    pub feed_threads: Option<usize>,
    pub connections_max: Option<usize>,
    pub connections_per_address_max: Option<usize>,
    pub header_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub ping_interval_ms: Option<u64>,
}

/// A secret that never prints: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The gateway's protective limits (protocol section 2, design.md "Limits everywhere").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent `/ws` sessions; past it the upgrade is refused with 503.
    pub sessions_max: usize,
    /// Concurrent `/feed` subscribers; past it the upgrade is refused with 503.
    pub feed_subscribers_max: usize,
    /// Messages the fan-out may queue for one session; a session past it is closed (1008).
    pub session_queue_max: usize,
    /// Commands and queries of one session waiting for the engine; past it: `rate_limited`.
    pub session_inflight_max: usize,
    /// Public events kept for the feed; a subscriber further behind is closed (1008).
    pub feed_backlog_max: usize,
    /// Token bucket per session: sustained messages per second and burst.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Bad or excess messages tolerated per `strike_window` before the session is closed (1008).
    pub strikes_max: u32,
    pub strike_window: Duration,
    /// Largest WebSocket frame or message; larger ones close the connection with 1009.
    pub frame_bytes_max: usize,
    /// Bytes buffered before a write reaches the socket, and the most a connection may buffer.
    pub write_buffer_bytes: usize,
    pub write_buffer_bytes_max: usize,
    /// A write (flush) that does not complete in this time closes the connection.
    pub write_timeout: Duration,
    /// A `/ws` connection must log in within this time.
    pub login_timeout: Duration,
    /// Submissions that may wait for the sequencer; past it the gateway answers busy.
    pub engine_queue_depth_max: usize,
    /// Threads of the feed's own runtime: writing one event to thousands of subscribers then
    /// competes with trading sessions for CPU as threads, not as tasks in the same queues.
    pub feed_threads: usize,
    /// TCP connections not yet upgraded to a WebSocket (HTTP requests, handshakes, idle or
    /// half-sent ones), in total and per client address; past either, a new connection is
    /// refused at once. Upgraded sockets count against `sessions_max` and
    /// `feed_subscribers_max` instead.
    pub connections_max: usize,
    pub connections_per_address_max: usize,
    /// A request's header must arrive complete within this time of the connection opening, or
    /// of the previous response on a keep-alive connection; otherwise the connection is closed.
    pub header_timeout: Duration,
    /// A `/ws` session or `/feed` subscriber that sends nothing (no message, no ping, no pong)
    /// for this long is closed (1008).
    pub idle_timeout: Duration,
    /// How often the server pings `/feed` readers (protocol section 9), so a live reader always
    /// answers within `idle_timeout`.
    pub ping_interval: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            sessions_max: 10_000,
            feed_subscribers_max: 20_000,
            session_queue_max: 4_096,
            session_inflight_max: 256,
            feed_backlog_max: 16_384,
            rate_per_second: 100,
            rate_burst: 200,
            strikes_max: 50,
            strike_window: Duration::from_secs(10),
            frame_bytes_max: 64 * 1024,
            write_buffer_bytes: 8 * 1024,
            write_buffer_bytes_max: 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(30),
            engine_queue_depth_max: 65_536,
            feed_threads: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            connections_max: 8_192,
            connections_per_address_max: 2_048,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub operator_token: Secret,
    /// Used only when the data directory is new: an existing market keeps its own.
    pub clocks: u16,
    pub fees: FeeSchedule,
    pub clock_defaults: ClockSettings,
    pub limits: Limits,
    /// The core's limits for a new data directory; an existing market keeps its own.
    pub market_limits: MarketLimits,
    /// Whether the journal is synced before replies go out (always, unless a benchmark asks).
    pub durability: Durability,
    pub snapshot_every: u64,
    /// Journal segment size: the unit in which the journal grows on disk and is pruned.
    pub segment_bytes: u64,
    /// A fault to inject (tests only; `HUASHI_FAULT`).
    pub fault: Option<Fault>,
    /// Run as one node of a replicated hall; `None`: alone.
    pub cluster: Option<ClusterConfig>,
}

/// One node of a hall replicated through NATS JetStream (docs/cluster.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs.
    pub nats: Vec<String>,
    /// The hall's name: letters, digits, `-` and `_`, at most 32.
    pub hall: String,
    /// This node's URL as others see it; `None`: `http://` + the bound address.
    pub advertise: Option<String>,
    pub lease_ttl: std::time::Duration,
    /// `huashi follow`: never publishes a new hall's genesis, waits for the leader's.
    pub join_only: bool,
}

pub const LEASE_TTL_MS_DEFAULT: u64 = 3_000;
const LEASE_TTL_MS_MIN: u64 = 500;
pub const HALL_NAME_MAX: usize = 32;

impl ClusterConfig {
    /// The JetStream stream the hall's journal goes to.
    pub fn stream_name(&self) -> String {
        format!("HUASHI_{}", self.hall.to_ascii_uppercase().replace('-', "_"))
    }

    /// The subject the leader publishes the journal on.
    pub fn subject(&self) -> String {
        format!("huashi.{}.journal", self.hall)
    }
}

fn cluster(
    args: &ServeArgs,
    file: &FileCluster,
    durability: Option<&str>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let nats = args.nats.clone().or_else(|| file.nats.clone());
    let hall = args.hall.clone().or_else(|| file.hall.clone());
    let Some(nats) = nats else {
        if hall.is_some() {
            return Err(ConfigError::invalid("--hall", "needs --nats (the hall's NATS servers)"));
        }
        if durability == Some("replicated") {
            return Err(ConfigError::invalid("engine.durability", "\"replicated\" needs --nats (a cluster)"));
        }
        return Ok(None);
    };
    let nats: Vec<String> = nats.split(',').map(str::trim).filter(|url| !url.is_empty()).map(String::from).collect();
    if nats.is_empty() {
        return Err(ConfigError::invalid("--nats", "names no server"));
    }
    let hall = hall.ok_or_else(|| ConfigError::invalid("--hall", "is required with --nats"))?;
    if hall.is_empty()
        || hall.len() > HALL_NAME_MAX
        || !hall.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigError::invalid(
            "--hall",
            format!("{hall:?}: 1 to {HALL_NAME_MAX} letters, digits, '-' or '_'"),
        ));
    }
    if let Some(durability) = durability.filter(|d| *d != "replicated") {
        return Err(ConfigError::invalid(
            "engine.durability",
            format!("{durability:?}: a clustered node is always \"replicated\" (local fdatasync and the stream's acknowledgement)"),
        ));
    }
    let lease_ttl_ms = args.lease_ttl_ms.or(file.lease_ttl_ms).unwrap_or(LEASE_TTL_MS_DEFAULT);
    if lease_ttl_ms < LEASE_TTL_MS_MIN {
        return Err(ConfigError::invalid("--lease-ttl-ms", format!("must be at least {LEASE_TTL_MS_MIN}")));
    }
    let advertise = args.advertise.clone().or_else(|| file.advertise.clone());
    if let Some(url) = &advertise {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid("--advertise", format!("{url:?} is not an http:// or https:// URL")));
        }
    }
    Ok(Some(ClusterConfig {
        nats,
        hall,
        advertise,
        lease_ttl: std::time::Duration::from_millis(lease_ttl_ms),
        join_only: false,
    }))
}

/// A fault injected by a test through `HUASHI_FAULT` (read by `huashi serve` only): it kills a
/// thread at a chosen seq to show what is fatal, and never changes what the core decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `panic:sequencer:seq=N`: the sequencer thread panics as it stages command seq N (before
    /// applying or journaling it).
    SequencerPanic { seq: u64 },
    /// `panic:clearing:seq=N`: the clearing thread panics as it takes engine output seq N.
    ClearingPanic { seq: u64 },
}

impl Fault {
    /// The seq at which the sequencer is to panic, if that is the fault.
    pub fn sequencer_panic_at(fault: Option<Fault>) -> Option<u64> {
        match fault {
            Some(Fault::SequencerPanic { seq }) => Some(seq),
            _ => None,
        }
    }

    /// The seq at which clearing is to panic, if that is the fault.
    pub fn clearing_panic_at(fault: Option<Fault>) -> Option<u64> {
        match fault {
            Some(Fault::ClearingPanic { seq }) => Some(seq),
            _ => None,
        }
    }
}

impl FromStr for Fault {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Fault, ConfigError> {
        let bad = || {
            ConfigError::invalid(
                "HUASHI_FAULT",
                format!("{text:?} is not panic:sequencer:seq=N or panic:clearing:seq=N (N ≥ 1)"),
            )
        };
        let mut parts = text.trim().split(':');
        let (Some("panic"), Some(thread), Some(at), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let seq = at.strip_prefix("seq=").and_then(|n| n.parse::<u64>().ok()).filter(|&n| n > 0).ok_or_else(bad)?;
        match thread {
            "sequencer" => Ok(Fault::SequencerPanic { seq }),
            "clearing" => Ok(Fault::ClearingPanic { seq }),
            _ => Err(bad()),
        }
    }
}

pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
pub const DATA_DIR_DEFAULT: &str = "./huashi-data";
pub const CLOCKS_DEFAULT: u16 = 4;
pub const CLOCKS_MAX: u16 = 256;
pub const SNAPSHOT_EVERY_DEFAULT: u64 = 100_000;
/// The smallest journal segment allowed: a page for the header and room for records.
pub const SEGMENT_BYTES_MIN: u64 = 4096;

#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("the operator token is missing: pass --operator-token or set HUASHI_OPERATOR_TOKEN")]
    MissingOperatorToken,
    #[error("cannot read the config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the config file {path} is not valid: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { field: field.to_string(), reason: reason.into() }
    }
}

impl Config {
    /// Reads `--config` (if any), applies the flags over it and validates the result.
    pub fn load(args: ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Config::from_parts(args, file)
    }

    /// Validates flags over a parsed file.
    pub fn from_parts(args: ServeArgs, file: FileConfig) -> Result<Config, ConfigError> {
        let cluster = cluster(&args, &file.cluster, file.engine.durability.as_deref())?;
        let listen_text = args.listen.or(file.listen).unwrap_or_else(|| LISTEN_DEFAULT.to_string());
        let listen = SocketAddr::from_str(&listen_text).map_err(|_| {
            ConfigError::invalid("--listen", format!("{listen_text:?} is not an address like 127.0.0.1:8080"))
        })?;
        if cluster.as_ref().is_some_and(|c| c.advertise.is_none()) && listen.ip().is_unspecified() {
            // Other nodes and the web app go to the URL a leader advertises: 0.0.0.0 is nowhere.
            return Err(ConfigError::invalid(
                "--advertise",
                format!("is required when listening on {listen}: the URL other nodes and browsers reach this node at"),
            ));
        }
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("--data-dir", "must not be empty"));
        }
        let operator_token = match args.operator_token {
            Some(token) if !token.is_empty() => Secret(token),
            Some(_) => return Err(ConfigError::invalid("--operator-token", "must not be empty")),
            None => return Err(ConfigError::MissingOperatorToken),
        };
        let clocks = args.clocks.or(file.clocks).unwrap_or(CLOCKS_DEFAULT);
        if clocks == 0 || clocks > CLOCKS_MAX {
            return Err(ConfigError::invalid("--clocks", format!("must be between 1 and {CLOCKS_MAX}")));
        }
        Ok(Config {
            listen,
            data_dir,
            operator_token,
            clocks,
            fees: fees(&file.fees)?,
            clock_defaults: clock_defaults(&file.clock)?,
            limits: limits(&file.limits)?,
            market_limits: MarketLimits::default()
                .patched(&file.market_limits)
                .map_err(|reject| ConfigError::invalid("market_limits", reject.message))?,
            cluster,
            durability: match file.engine.durability.as_deref() {
                None | Some("fsync") | Some("replicated") => Durability::Fsync,
                Some("none") => Durability::None,
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "engine.durability",
                        format!("{other:?} is not fsync, replicated or none"),
                    ))
                }
            },
            snapshot_every: match file.engine.snapshot_every {
                Some(0) => return Err(ConfigError::invalid("engine.snapshot_every", "must be positive")),
                Some(n) => n,
                None => SNAPSHOT_EVERY_DEFAULT,
            },
            segment_bytes: match file.engine.segment_bytes {
                Some(n) if n < SEGMENT_BYTES_MIN => {
                    return Err(ConfigError::invalid(
                        "engine.segment_bytes",
                        format!("must be at least {SEGMENT_BYTES_MIN}"),
                    ))
                }
                Some(n) => n,
                None => SEGMENT_BYTES_DEFAULT,
            },
            fault: args.fault.as_deref().map(Fault::from_str).transpose()?,
        })
    }

    /// A configuration for tests: defaults everywhere, this data directory and token.
    pub fn for_tests(data_dir: impl Into<PathBuf>, operator_token: &str) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            operator_token: Secret(operator_token.to_string()),
            clocks: CLOCKS_DEFAULT,
            fees: FeeSchedule::default(),
            clock_defaults: ClockSettings::default(),
            limits: Limits::default(),
            market_limits: MarketLimits::default(),
            durability: Durability::Fsync,
            snapshot_every: SNAPSHOT_EVERY_DEFAULT,
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            fault: None,
            cluster: None,
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    toml::from_str(&text).map_err(|e| ConfigError::Malformed { path: path.to_path_buf(), reason: e.to_string() })
}

/// A percentage as parts per million, exact (at most 4 decimal places), between 0 and 100.
fn pct_to_ppm(value: &FileDecimal, field: &str) -> Result<u32, ConfigError> {
    let pct = value.to_decimal(field)?;
    if pct.is_sign_negative() || pct > Decimal::from(100) {
        return Err(ConfigError::invalid(field, "must be between 0 and 100"));
    }
    let ppm = pct * Decimal::from(10_000);
    if ppm.fract() != Decimal::ZERO {
        return Err(ConfigError::invalid(field, "must have at most 4 decimal places"));
    }
    ppm.to_u32().ok_or_else(|| ConfigError::invalid(field, "out of range"))
}

fn money(value: &FileDecimal, field: &str) -> Result<Fen, ConfigError> {
    let amount = value.to_decimal(field)?;
    let fen = amount * Decimal::from(100);
    if fen.fract() != Decimal::ZERO {
        return Err(ConfigError::invalid(field, "must have at most 2 decimal places"));
    }
    fen.to_i64().map(Fen).ok_or_else(|| ConfigError::invalid(field, "too large"))
}

fn fees(file: &FileFees) -> Result<FeeSchedule, ConfigError> {
    let mut fees = FeeSchedule::default();
    if let Some(v) = &file.commission_pct {
        fees.commission_ppm = pct_to_ppm(v, "fees.commission_pct")?;
    }
    if let Some(v) = &file.book_fee_pct {
        fees.book_fee_ppm = pct_to_ppm(v, "fees.book_fee_pct")?;
    }
    if let Some(v) = &file.clock_fee_per_container {
        let fee = money(v, "fees.clock_fee_per_container")?;
        if fee.0 < 0 || fee.0 > 1_000_000 {
            return Err(ConfigError::invalid("fees.clock_fee_per_container", "must be between 0 and 10000.00"));
        }
        fees.clock_fee_per_container = fee;
    }
    Ok(fees)
}

/// The same bounds the core enforces on `configure_clock`.
fn clock_defaults(file: &FileClock) -> Result<ClockSettings, ConfigError> {
    let mut settings = ClockSettings::default();
    if let Some(v) = &file.step {
        let step = money(v, "clock.step")?;
        if step.0 <= 0 {
            return Err(ConfigError::invalid("clock.step", "must be positive"));
        }
        settings.step = step;
    }
    if let Some(tick_ms) = file.tick_ms {
        if tick_ms == 0 || tick_ms > TICK_MS_MAX {
            return Err(ConfigError::invalid("clock.tick_ms", format!("must be between 1 and {TICK_MS_MAX}")));
        }
        settings.tick_ms = tick_ms;
    }
    for (field, value, slot) in [
        ("clock.pre_roll_ms", file.pre_roll_ms, &mut settings.pre_roll_ms),
        ("clock.pause_ms", file.pause_ms, &mut settings.pause_ms),
        ("clock.multi_buy_ms", file.multi_buy_ms, &mut settings.multi_buy_ms),
    ] {
        if let Some(value) = value {
            if value > PHASE_MS_MAX {
                return Err(ConfigError::invalid(field, format!("must be at most {PHASE_MS_MAX}")));
            }
            *slot = value;
        }
    }
    if let Some(restart_ticks) = file.restart_ticks {
        if restart_ticks > 1_000_000 {
            return Err(ConfigError::invalid("clock.restart_ticks", "must be at most 1000000"));
        }
        settings.restart_ticks = restart_ticks;
    }
    Ok(settings)
}

fn positive<T: Copy + PartialOrd + Default>(value: Option<T>, field: &str, slot: &mut T) -> Result<(), ConfigError> {
    if let Some(value) = value {
        if value <= T::default() {
            return Err(ConfigError::invalid(field, "must be positive"));
        }
        *slot = value;
    }
    Ok(())
}

fn limits(file: &FileLimits) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    positive(file.sessions_max, "limits.sessions_max", &mut limits.sessions_max)?;
    positive(file.feed_subscribers_max, "limits.feed_subscribers_max", &mut limits.feed_subscribers_max)?;
    positive(file.session_queue_max, "limits.session_queue_max", &mut limits.session_queue_max)?;
    positive(file.session_inflight_max, "limits.session_inflight_max", &mut limits.session_inflight_max)?;
    positive(file.feed_backlog_max, "limits.feed_backlog_max", &mut limits.feed_backlog_max)?;
    positive(file.rate_per_second, "limits.rate_per_second", &mut limits.rate_per_second)?;
    positive(file.rate_burst, "limits.rate_burst", &mut limits.rate_burst)?;
    positive(file.strikes_max, "limits.strikes_max", &mut limits.strikes_max)?;
    positive(file.frame_bytes_max, "limits.frame_bytes_max", &mut limits.frame_bytes_max)?;
    positive(file.write_buffer_bytes, "limits.write_buffer_bytes", &mut limits.write_buffer_bytes)?;
    positive(file.write_buffer_bytes_max, "limits.write_buffer_bytes_max", &mut limits.write_buffer_bytes_max)?;
    positive(file.engine_queue_depth_max, "limits.engine_queue_depth_max", &mut limits.engine_queue_depth_max)?;
    positive(file.feed_threads, "limits.feed_threads", &mut limits.feed_threads)?;
    positive(file.connections_max, "limits.connections_max", &mut limits.connections_max)?;
    positive(
        file.connections_per_address_max,
        "limits.connections_per_address_max",
        &mut limits.connections_per_address_max,
    )?;
    for (field, value, slot) in [
        ("limits.strike_window_ms", file.strike_window_ms, &mut limits.strike_window),
        ("limits.write_timeout_ms", file.write_timeout_ms, &mut limits.write_timeout),
        ("limits.login_timeout_ms", file.login_timeout_ms, &mut limits.login_timeout),
        ("limits.header_timeout_ms", file.header_timeout_ms, &mut limits.header_timeout),
        ("limits.idle_timeout_ms", file.idle_timeout_ms, &mut limits.idle_timeout),
        ("limits.ping_interval_ms", file.ping_interval_ms, &mut limits.ping_interval),
    ] {
        if let Some(ms) = value {
            if ms == 0 {
                return Err(ConfigError::invalid(field, "must be positive"));
            }
            *slot = Duration::from_millis(ms);
        }
    }
    // A live feed reader answers only the server's pings: it must be asked before it is dropped.
    if limits.idle_timeout <= limits.ping_interval {
        return Err(ConfigError::invalid("limits.idle_timeout_ms", "must exceed ping_interval_ms"));
    }
    // A write buffer must hold at least one frame beyond its flush threshold (tungstenite's rule).
    if limits.write_buffer_bytes_max <= limits.write_buffer_bytes + limits.frame_bytes_max {
        return Err(ConfigError::invalid(
            "limits.write_buffer_bytes_max",
            "must exceed write_buffer_bytes + frame_bytes_max",
        ));
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(token: Option<&str>) -> ServeArgs {
        ServeArgs { operator_token: token.map(str::to_string), ..ServeArgs::default() }
    }

    #[test]
    fn defaults_apply_without_flags_or_file() {
        let config = Config::from_parts(args(Some("op")), FileConfig::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./huashi-data"));
        assert_eq!(config.clocks, 4);
        assert_eq!(config.fees, FeeSchedule::default());
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn missing_operator_token_is_a_clear_error() {
        let error = Config::from_parts(args(None), FileConfig::default()).unwrap_err();
        assert!(error.to_string().contains("HUASHI_OPERATOR_TOKEN"), "{error}");
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            clocks = 2
            [fees]
            commission_pct = "4.5"
            clock_fee_per_container = "0.25"
            book_fee_pct = 0.2
            [clock]
            step = "0.05"
            tick_ms = 20
            [limits]
            rate_per_second = 10
            rate_burst = 20
            "#,
        )
        .unwrap();
        let mut a = args(Some("op"));
        a.clocks = Some(6);
        let config = Config::from_parts(a, file).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.clocks, 6);
        assert_eq!(config.fees.commission_ppm, 45_000);
        assert_eq!(config.fees.book_fee_ppm, 2_000);
        assert_eq!(config.fees.clock_fee_per_container, Fen(25));
        assert_eq!(config.clock_defaults.step, Fen(5));
        assert_eq!(config.clock_defaults.tick_ms, 20);
        assert_eq!(config.limits.rate_per_second, 10);
    }

    #[test]
    fn bad_values_name_their_field() {
        let bad =
            |text: &str| Config::from_parts(args(Some("op")), toml::from_str(text).unwrap()).unwrap_err().to_string();
        assert!(bad("[fees]\ncommission_pct = \"120\"").contains("fees.commission_pct"));
        assert!(bad("[clock]\nstep = \"0.001\"").contains("clock.step"));
        assert!(bad("[clock]\ntick_ms = 0").contains("clock.tick_ms"));
        assert!(bad("[limits]\nsessions_max = 0").contains("limits.sessions_max"));
        assert!(bad("[limits]\nheader_timeout_ms = 0").contains("limits.header_timeout_ms"));
        assert!(bad("[limits]\nconnections_per_address_max = 0").contains("limits.connections_per_address_max"));
        assert!(bad("[limits]\nidle_timeout_ms = 20000").contains("limits.idle_timeout_ms"));
        assert!(bad("listen = \"nowhere\"").contains("--listen"));
        assert!(toml::from_str::<FileConfig>("colour = 1").is_err());
        assert!(bad("[engine]\ndurability = \"sometimes\"").contains("engine.durability"));
        assert!(bad("[market_limits]\nproducts_max = 0").contains("products_max"));
        assert!(toml::from_str::<FileConfig>("[market_limits]\nlots_max = 3").is_err());
    }

    #[test]
    fn market_limits_seed_only_what_they_name() {
        let file: FileConfig = toml::from_str("[market_limits]\nproducts_max = 7").unwrap();
        let config = Config::from_parts(args(Some("op")), file).unwrap();
        assert_eq!(config.market_limits.products_max, 7);
        assert_eq!(config.market_limits.participants_max, MarketLimits::default().participants_max);
    }

    #[test]
    fn faults_parse_and_bad_ones_name_huashi_fault() {
        let with = |fault: &str| {
            Config::from_parts(ServeArgs { fault: Some(fault.into()), ..args(Some("op")) }, FileConfig::default())
        };
        assert_eq!(with("panic:sequencer:seq=12").unwrap().fault, Some(Fault::SequencerPanic { seq: 12 }));
        assert_eq!(with("panic:clearing:seq=3").unwrap().fault, Some(Fault::ClearingPanic { seq: 3 }));
        for bad in [
            "panic:sequencer",
            "panic:fan-out:seq=1",
            "panic:clearing:seq=0",
            "exit:sequencer:seq=1",
            "panic:sequencer:seq=1:x",
        ] {
            let error = with(bad).unwrap_err().to_string();
            assert!(error.contains("HUASHI_FAULT"), "{bad}: {error}");
        }
        assert_eq!(Config::from_parts(args(Some("op")), FileConfig::default()).unwrap().fault, None);
    }

    #[test]
    fn segment_bytes_has_a_floor() {
        let parse = |text: &str| Config::from_parts(args(Some("op")), toml::from_str(text).unwrap());
        assert_eq!(parse("[engine]\nsegment_bytes = 16384").unwrap().segment_bytes, 16384);
        assert!(parse("[engine]\nsegment_bytes = 100").unwrap_err().to_string().contains("engine.segment_bytes"));
    }

    #[test]
    fn secrets_never_print() {
        let config = Config::for_tests("/tmp/x", "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    fn clustered(args: ServeArgs, file: &str) -> Result<Option<ClusterConfig>, String> {
        let file: FileConfig = toml::from_str(file).map_err(|e| e.to_string())?;
        Config::from_parts(args, file).map(|c| c.cluster).map_err(|e| e.to_string())
    }

    #[test]
    fn a_cluster_from_flags_or_file_with_every_mistake_named() {
        assert_eq!(clustered(args(Some("op")), ""), Ok(None), "alone without --nats");
        let flags = ServeArgs {
            nats: Some("nats://127.0.0.1:4222, nats://127.0.0.1:4223".into()),
            hall: Some("sh-1".into()),
            ..args(Some("op"))
        };
        let cluster = clustered(flags, "").unwrap().expect("clustered");
        assert_eq!(cluster.nats, vec!["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
        assert_eq!((cluster.stream_name(), cluster.subject()), ("HUASHI_SH_1".into(), "huashi.sh-1.journal".into()));
        assert_eq!(cluster.lease_ttl, std::time::Duration::from_millis(LEASE_TTL_MS_DEFAULT));
        assert!(!cluster.join_only);
        let file = "[cluster]\nnats = \"nats://a:4222\"\nhall = \"kunming\"\nlease_ttl_ms = 1500\nadvertise = \"http://10.0.0.5:8080\"\n[engine]\ndurability = \"replicated\"";
        let cluster = clustered(args(Some("op")), file).unwrap().expect("clustered");
        assert_eq!((cluster.hall.as_str(), cluster.lease_ttl.as_millis()), ("kunming", 1500));
        assert_eq!(cluster.advertise.as_deref(), Some("http://10.0.0.5:8080"));

        let error = |flags: ServeArgs, file: &str| clustered(flags, file).unwrap_err();
        let nats =
            |hall: &str| ServeArgs { nats: Some("nats://a:4222".into()), hall: Some(hall.into()), ..args(Some("op")) };
        assert!(error(ServeArgs { hall: Some("sh".into()), ..args(Some("op")) }, "").contains("--hall"));
        assert!(error(ServeArgs { nats: Some("nats://a:4222".into()), ..args(Some("op")) }, "").contains("--hall"));
        assert!(error(nats("a b"), "").contains("letters, digits"));
        assert!(error(nats(&"x".repeat(33)), "").contains("--hall"));
        assert!(error(ServeArgs { nats: Some(" , ".into()), ..nats("sh") }, "").contains("--nats"));
        assert!(error(args(Some("op")), "[engine]\ndurability = \"replicated\"").contains("needs --nats"));
        assert!(error(nats("sh"), "[engine]\ndurability = \"none\"").contains("a clustered node is always"));
        assert!(error(ServeArgs { lease_ttl_ms: Some(100), ..nats("sh") }, "").contains("--lease-ttl-ms"));
        assert!(error(ServeArgs { advertise: Some("10.0.0.5:8080".into()), ..nats("sh") }, "").contains("--advertise"));
        let anywhere = ServeArgs { listen: Some("0.0.0.0:8080".into()), ..nats("sh") };
        assert!(error(anywhere, "").contains("--advertise: is required when listening on 0.0.0.0:8080"));
    }
}
