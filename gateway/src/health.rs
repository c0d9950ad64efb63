//! The server's health as `GET /health` reports it (protocol §1): `ok`, `degraded` (it cannot
//! make commands durable for now: a clustered leader whose stream cannot take batches) or `failed` (the engine is gone: the
//! process is about to exit). Failed is final: nothing turns it back. Shared by the watchdog
//! (see `fatal`), the HTTP handler and whoever later watches durability.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    Ok = 0,
    Degraded = 1,
    Failed = 2,
}

impl HealthState {
    /// The `status` field of `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::Degraded => "degraded",
            HealthState::Failed => "failed",
        }
    }
}

/// What `/health` reads: an atomic state for the usual `ok` (no lock on that path) and the
/// reason of any other state.
#[derive(Debug, Default)]
pub struct Health {
    state: AtomicU8,
    /// Changed only together with `state`, under this lock, so a reader never pairs a state
    /// with another state's reason.
    reason: Mutex<String>,
    /// Set once an orderly shutdown begins: threads that end from then on are expected to.
    stopping: AtomicBool,
}

impl Health {
    /// The state and, unless it is `Ok`, why.
    pub fn read(&self) -> (HealthState, Option<String>) {
        if self.state.load(Ordering::Acquire) == HealthState::Ok as u8 {
            return (HealthState::Ok, None);
        }
        let reason = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        (self.state_now(), Some(reason.clone()))
    }

    /// The engine is gone: `/health` answers `503 failed` until the process exits.
    pub fn fail(&self, reason: &str) {
        self.set(HealthState::Failed, reason);
    }

    /// Commands cannot be made durable for now (e.g. no follower acknowledges); a later
    /// `restore` returns to ok. No effect once failed.
    pub fn degrade(&self, reason: &str) {
        self.set(HealthState::Degraded, reason);
    }

    /// Back to ok after `degrade`; no effect once failed.
    pub fn restore(&self) {
        self.set(HealthState::Ok, "");
    }

    /// Marks the start of an orderly shutdown.
    pub fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn state_now(&self) -> HealthState {
        match self.state.load(Ordering::Acquire) {
            0 => HealthState::Ok,
            1 => HealthState::Degraded,
            _ => HealthState::Failed,
        }
    }

    fn set(&self, state: HealthState, reason: &str) {
        let mut held = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if self.state_now() == HealthState::Failed {
            return;
        }
        *held = reason.to_string();
        self.state.store(state as u8, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_is_final_and_keeps_its_reason() {
        let health = Health::default();
        assert_eq!(health.read(), (HealthState::Ok, None));
        health.degrade("no follower");
        assert_eq!(health.read(), (HealthState::Degraded, Some("no follower".into())));
        health.restore();
        assert_eq!(health.read(), (HealthState::Ok, None));
        health.fail("journal write failed: /d/journal/x.log: No space left on device (os error 28)");
        health.restore();
        health.degrade("later");
        let (state, reason) = health.read();
        assert_eq!(state, HealthState::Failed);
        assert!(reason.unwrap().contains("No space left on device"));
    }
}
