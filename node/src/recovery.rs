//! Recovery of a node's data directory: the market, clearing and the feed's numbering come back
//! to one common seq (the newest at which the market and clearing both have a snapshot, or
//! genesis) and the journal after it is replayed through all three, so they agree exactly.

use huashi_clearing::service as clearing_service;
use huashi_clearing::{Archive, Clearing};
use huashi_engine::batch_sink::SinkHandle;
use huashi_engine::core::MarketConfig;
use huashi_engine::journal::Durability;
use huashi_engine::sequencer::{Sequencer, SequencerConfig};
use huashi_engine::types::{Day, EngineTime};
use huashi_gateway::feed_log::FeedLog;
use huashi_gateway::{Config, GatewayError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything recovered, the sequencer already running on the recovered market.
pub struct Recovered {
    pub sequencer: Sequencer,
    pub clearing: Clearing,
    pub archive: Archive,
    pub feed_log: FeedLog,
}

/// Recovers `config.data_dir` (or creates a new market there from the config) and starts the
/// sequencer. With `replicated` (a clustered node's sink) the sequencer starts as a follower:
/// it takes the hall's records until it leads, and then ships its own batches there.
pub fn recover(config: &Config, replicated: Option<SinkHandle>) -> Result<Recovered, GatewayError> {
    let mut engine_config = SequencerConfig::new(&config.data_dir);
    engine_config.queue_depth_max = config.limits.engine_queue_depth_max;
    engine_config.durability = config.durability;
    engine_config.snapshot_every = config.snapshot_every;
    engine_config.segment_bytes = config.segment_bytes;
    engine_config.panic_at_seq = huashi_gateway::config::Fault::sequencer_panic_at(config.fault);
    engine_config.follower = replicated.is_some();
    engine_config.sink = replicated;
    if let Some(fault) = config.fault {
        tracing::warn!(?fault, "HUASHI_FAULT is set: this server will crash on purpose (a testing hook)");
    }
    if config.durability == Durability::None {
        tracing::warn!("engine.durability = none: replies no longer wait for the journal to reach the disk");
    }
    let genesis = genesis(config);
    let expected = genesis.clone();
    let engine_error = |reason: String| GatewayError::Engine { path: config.data_dir.clone(), reason };
    let mut recovery = clearing_service::recover(&config.data_dir, config.fees, genesis.day)
        .map_err(|e| engine_error(e.to_string()))?;
    for skipped in &recovery.skipped {
        tracing::warn!(snapshot = %skipped, "skipped a clearing snapshot that does not decode");
    }
    let mut feed_log = FeedLog::restore(recovery.publisher.as_deref()).map_err(engine_error)?;
    engine_config.start_at = Some(recovery.start_at);
    let hook = clearing_service::replay_hook(
        &mut recovery.clearing,
        &recovery.archive,
        recovery.start_at,
        |_, events, data| feed_log.record(events, data, |_| {}),
    );
    let sequencer = Sequencer::start(engine_config, move || genesis, hook).map_err(|e| engine_error(e.to_string()))?;
    let found = sequencer.initial.config();
    if (found.clocks, found.clock_defaults) != (expected.clocks, expected.clock_defaults) {
        tracing::warn!(
            clocks = found.clocks,
            "the data directory already holds a market: its clocks and clock defaults stand, \
             the configured ones apply only to a new data directory"
        );
    }
    let in_force = sequencer.initial.fees();
    if found.fees != expected.fees {
        // The market's fees are its own state, journaled (set_fees): the file only seeds a new
        // directory, so that a replay and every replica charge the same. Compared with the
        // directory's own seed, like the limits: fees changed by set_fees alone (no [fees] in the
        // file, or the file that seeded it) warn about nothing.
        tracing::warn!(
            configured = ?expected.fees,
            in_force = ?in_force,
            "the data directory already holds a market: its fees stand and [fees] in the config applies \
             only to a new data directory; change them with set_fees (from the next trading day)"
        );
    }
    if found.limits != expected.limits {
        // The market's limits are its own state (set_limits), like its fees: the file only
        // seeds a new directory, so a replay and every replica decide the same. Compared with
        // the directory's own seed, so limits changed by set_limits alone warn about nothing.
        tracing::warn!(
            "the data directory already holds a market: its limits stand and [market_limits] in the config \
             applies only to a new data directory; change them with set_limits"
        );
    }
    for skipped in &sequencer.recovered.skipped_snapshots {
        tracing::warn!(snapshot = %skipped, "skipped a damaged snapshot");
    }
    tracing::info!(
        seq = sequencer.recovered.last_seq,
        replayed = sequencer.recovered.replayed,
        feed_seq = feed_log.last_seq(),
        day = %sequencer.initial.day(),
        "market recovered"
    );
    Ok(Recovered { sequencer, clearing: recovery.clearing, archive: recovery.archive, feed_log })
}

/// What a new market starts with: the config decides only that; an existing one keeps its own.
pub fn genesis(config: &Config) -> MarketConfig {
    MarketConfig {
        day: Day::containing(wall_clock()),
        clocks: config.clocks,
        fees: config.fees,
        clock_defaults: config.clock_defaults,
        limits: config.market_limits,
    }
}

/// Only for the day a new market is born on; after that, time comes from the journal.
fn wall_clock() -> EngineTime {
    EngineTime(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64))
}
