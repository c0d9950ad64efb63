//! The `huashi` command line: `serve` runs a market (a `huashi-node`), `follow` joins a
//! replicated hall as a follower, `demo` a simulated one,
//! `replay` rebuilds and verifies one from its data directory, `statements`, `delivery-note` and
//! `index` read its archive. Each subcommand lives in its own module; this file only dispatches.

mod delivery_note;
mod demo;
mod index;
mod replay;
mod serve;
mod statements;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "huashi", version, about = "Huashi (花市): the Shanghai flower auction and exchange")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the market: HTTP + WebSocket on --listen, state in --data-dir.
    Serve(serve::ServeArgs),
    /// Join a replicated hall as a follower; it takes over when the leader's lease lapses.
    ///
    /// The same flags as serve, --nats and --hall required. A follower serves /feed, /api/*, the
    /// web app and reads over /ws; see docs/cluster.md.
    Follow(serve::ServeArgs),
    /// Rebuild the state from a data directory and print its commands, last seq and state hash.
    Replay(replay::ReplayArgs),
    /// Run a demonstration market: a server plus simulated growers, buyers and an operator.
    Demo(demo::DemoArgs),
    /// Write a settled day's statements as CSV (one per participant, plus summary.csv).
    Statements(statements::StatementsArgs),
    /// Print the SFCI history: one row per settled day, the close of every index.
    Index(index::IndexArgs),
    /// Write a settled day's delivery notes as CSV (one per buyer: its dispatch lines).
    DeliveryNote(delivery_note::DeliveryNoteArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A market whose sequencer, journal, clearing or fan-out thread died must not go on looking
    // alive: any panic logs one line and exits (see huashi_gateway::fatal). The offline commands
    // keep Rust's default, which already ends them.
    if matches!(cli.command, Command::Serve(_) | Command::Follow(_) | Command::Demo(_)) {
        huashi_gateway::fatal::install_panic_hook();
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Follow(args) => serve::follow(args),
        Command::Replay(args) => replay::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Statements(args) => statements::run(args),
        Command::Index(args) => index::run(args),
        Command::DeliveryNote(args) => delivery_note::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("huashi: {error:#}");
            ExitCode::FAILURE
        }
    }
}
