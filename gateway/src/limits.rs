//! A token bucket: a session's message rate (`rate_per_second`, `rate_burst`) and its strikes
//! (bad or excess messages per window) are both buckets. Time is passed in, so tests need no clock.

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

#[cfg(test)]
mod tests {
    use super::*;

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
