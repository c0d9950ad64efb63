//! `huashi serve` (and `huashi follow`, its clustered twin): parses the flags, binds the listener and runs a market node (see the
//! huashi-node crate) until SIGINT or SIGTERM; then it stops accepting, closes every session,
//! snapshots the market and exits 0. What is fatal (a panic, a journal that cannot be written)
//! ends it at once, non-zero: see `huashi_gateway::fatal`.

use anyhow::Context;
use huashi_gateway::Config;
use huashi_node::Node;
use std::io::{IsTerminal, Write};

pub use huashi_gateway::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logs("info");
    start(Config::load(args)?)
}

/// `huashi follow`: a node of a replicated hall that waits for the hall's leader and follows it.
pub fn follow(args: ServeArgs) -> anyhow::Result<()> {
    init_logs("info");
    let mut config = Config::load(args)?;
    match &mut config.cluster {
        Some(cluster) => cluster.join_only = true,
        None => anyhow::bail!("follow needs --nats URL[,URL…] and --hall NAME (docs/cluster.md)"),
    }
    start(config)
}

fn start(config: Config) -> anyhow::Result<()> {
    match huashi_gateway::sys::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open files"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gateway")
        // Sessions read requests and write replies here: see `prefer_prompt_wakeups`.
        .on_thread_start(huashi_engine::sequencer::prefer_prompt_wakeups)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let data_dir = config.data_dir.clone();
    let node = Node::start(listener, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "huashi listening on http://{} day {} data {}",
        node.local_addr(),
        node.day(),
        data_dir.display()
    )?;
    stdout.flush()?;
    drop(stdout);
    node.serve(stop_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
pub(crate) async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Logs go to stderr; `RUST_LOG` picks the level (default `default_level`).
pub(crate) fn init_logs(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
