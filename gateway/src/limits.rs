//! A token bucket: a session's message rate (`rate_per_second`, `rate_burst`) and its strikes
//! (bad or excess messages per window) are both buckets. Time is passed in, so tests need no clock.
//! And the gate that bounds TCP connections before any upgrade, in total and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens, refilled at `per_second`.
    pub fn new(capacity: u32, per_second: f64, now: Instant) -> TokenBucket {
        TokenBucket { capacity: capacity as f64, tokens: capacity as f64, per_second, last: now }
    }

    /// `capacity` tokens that refill completely over `window`.
    pub fn per_window(capacity: u32, window: Duration, now: Instant) -> TokenBucket {
        TokenBucket::new(capacity, capacity as f64 / window.as_secs_f64().max(1e-3), now)
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts the TCP connections not (yet) upgraded to a WebSocket, in total and per client
/// address. Upgraded ones are counted by the session and subscriber slots instead, so a socket
/// is always under one bound or the other.
#[derive(Debug)]
pub struct ConnectionGate {
    total_max: usize,
    per_address_max: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a connection was not let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Total,
    Address,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct ConnectionPass {
    gate: Arc<ConnectionGate>,
    address: IpAddr,
}

impl ConnectionGate {
    pub fn new(total_max: usize, per_address_max: usize) -> Arc<ConnectionGate> {
        Arc::new(ConnectionGate { total_max, per_address_max, open: Mutex::new((0, HashMap::new())) })
    }

    /// Admits a connection from `address` if both bounds allow it.
    pub fn admit(self: &Arc<ConnectionGate>, address: IpAddr) -> Result<ConnectionPass, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (total, by_address) = &mut *open;
        if *total >= self.total_max {
            return Err(Refused::Total);
        }
        let mine = by_address.entry(address).or_insert(0);
        if *mine >= self.per_address_max {
            return Err(Refused::Address);
        }
        *mine += 1;
        *total += 1;
        Ok(ConnectionPass { gate: self.clone(), address })
    }

    /// Connections admitted and not yet gone.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).0
    }
}

impl Drop for ConnectionPass {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (total, by_address) = &mut *open;
        *total -= 1;
        if let Some(mine) = by_address.get_mut(&self.address) {
            *mine -= 1;
            // Forget addresses that left, so the map is bounded by the connections open.
            if *mine == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_bounds_the_total_and_each_address() {
        let gate = ConnectionGate::new(3, 2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refused::Address);
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit(a).unwrap();
        assert_eq!(gate.open(), 3);
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3, 10.0, t0);
        assert!((0..3).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0));
        assert!(!bucket.take(t0 + Duration::from_millis(50)));
        assert!(bucket.take(t0 + Duration::from_millis(110)));
        assert!(!bucket.take(t0 + Duration::from_millis(110)));
        // Never more than the capacity, however long it rested.
        let later = t0 + Duration::from_secs(100);
        assert!((0..3).all(|_| bucket.take(later)));
        assert!(!bucket.take(later));
    }

    #[test]
    fn strikes_refill_over_their_window() {
        let t0 = Instant::now();
        let mut strikes = TokenBucket::per_window(2, Duration::from_secs(10), t0);
        assert!(strikes.take(t0) && strikes.take(t0));
        assert!(!strikes.take(t0 + Duration::from_secs(1)));
        assert!(strikes.take(t0 + Duration::from_secs(6)));
    }
}
