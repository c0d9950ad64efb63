//! What is fatal to a running market, and how the process dies of it.
//!
//! - A panic on any thread: the `huashi` binary installs [`install_panic_hook`], which records
//!   the cause for `/health` ([`panic_cause`]), logs one line naming the thread, the message and
//!   the place, and exits at once. A hook, not `panic = "abort"`, because Cargo ignores that
//!   profile setting in test builds, and the end-to-end tests must see what production does.
//! - The sequencer ending while the server is not stopping (a journal write or sync that failed:
//!   a full disk, an I/O error; or, without the hook, a panic): the [`watch_sequencer`] thread
//!   marks `/health` failed, logs the cause (it names the journal file) and exits.
//!
//! Exiting at once is safe: a reply leaves only after its command is durable, so the journal
//! holds everything acknowledged, and a restart recovers as after `kill -9`. Going on would be a
//! zombie market: sessions told "the engine is stopping", the feed silent, `/health` ok.

use crate::health::Health;
use crossbeam_channel::Receiver;
use huashi_engine::sequencer::Ending;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Exit status after a panic (Rust's own for a panicking main).
pub const EXIT_PANIC: i32 = 101;
/// Exit status after a fatal engine failure: in practice a journal that cannot be written or
/// synced (sysexits' `EX_IOERR`).
pub const EXIT_FATAL: i32 = 74;
/// A replicated hall's leader that lost its lease or had a publish fenced: another node leads;
/// this one acknowledged nothing that is not in the stream and stops (EX_TEMPFAIL).
pub const EXIT_DEPOSED: i32 = 75;

/// The first panic's cause, set by the hook before anything slow (a backtrace): from then on
/// `/health` answers failed. Process-wide, as the hook is: a panic anywhere ends this process.
static PANIC_CAUSE: OnceLock<String> = OnceLock::new();

/// Why the process is dying of a panic, once the hook has seen one.
pub fn panic_cause() -> Option<&'static str> {
    PANIC_CAUSE.get().map(String::as_str)
}

/// The threads of the async runtimes (`serve`'s, the feed's, `demo`'s), where a panic ends one
/// connection's task, not the market: tokio contains it. Every other thread (the sequencer,
/// journal-sync, snapshots, the fan-out, clearing, the watchdog) is the market, and its panic is
/// fatal.
const CONTAINED_THREADS: [&str; 3] = ["gateway", "feed", "demo"];

/// Installs the panic hook: one line on stderr, `huashi: fatal: thread 'NAME' panicked at
/// FILE:LINE:COL: MESSAGE; exiting`, a backtrace if `RUST_BACKTRACE` asks for one (symbolising
/// it delays the exit), and exit status [`EXIT_PANIC`].
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        if CONTAINED_THREADS.contains(&name) {
            // A connection task on the async runtimes: tokio ends that task (its socket closes)
            // and every other participant goes on being served; the market is untouched.
            default(info);
            return;
        }
        let message = info.payload_as_str().unwrap_or("(a panic without a message)");
        let location = info.location().map_or_else(|| "an unknown place".to_string(), |l| l.to_string());
        let cause = format!("thread '{name}' panicked at {location}: {message}");
        let _ = PANIC_CAUSE.set(cause.clone());
        // `capture` honours RUST_BACKTRACE / RUST_LIB_BACKTRACE and is cheap when they are unset.
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured).then_some(backtrace);
        exit(EXIT_PANIC, &cause, backtrace.as_ref());
    }));
}

/// Logs `huashi: fatal: CAUSE; exiting` as one line and exits with `code`, at once: no
/// destructor, no shutdown snapshot (what is durable is all that was promised). A second thread
/// that gets here meanwhile waits for the first to end the process, so the log has one line.
pub fn exit(code: i32, cause: &str, backtrace: Option<&std::backtrace::Backtrace>) -> ! {
    static EXITING: AtomicBool = AtomicBool::new(false);
    if EXITING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    let mut line = format!("huashi: fatal: {cause}; exiting");
    // One line, whatever the message holds.
    line = line.replace('\n', "\\n");
    line.push('\n');
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    if let Some(backtrace) = backtrace {
        let _ = writeln!(stderr, "{backtrace}");
    }
    let _ = stderr.flush();
    drop(stderr);
    std::process::exit(code)
}

/// Starts the `watchdog` thread: it waits for the sequencer to end and, unless an orderly
/// shutdown began first, fails `/health` and exits ([`EXIT_FATAL`], or [`EXIT_PANIC`] for a
/// sequencer that ended without a report, i.e. panicked without the hook installed).
pub fn watch_sequencer(ended: Receiver<Ending>, health: Arc<Health>) -> std::io::Result<()> {
    std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let (code, cause) = match ended.recv() {
            Ok(Ok(())) => return,
            Ok(Err(reason)) => (EXIT_FATAL, format!("the sequencer stopped: {reason}")),
            Err(_) => (EXIT_PANIC, "the sequencer thread panicked".to_string()),
        };
        // During shutdown the server reports the error itself (and exits non-zero).
        if health.is_stopping() {
            return;
        }
        health.fail(&cause);
        exit(code, &cause, None)
    })?;
    Ok(())
}
