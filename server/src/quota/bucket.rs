//! A token bucket: `rate` tokens a second, up to `capacity`. Pure (the caller passes `now`),
//! so its rules are unit-tested.
//!
//! A request larger than the whole capacity (one record over a small bytes-per-second
//! quota) would never fit; it is let through when the bucket is full, and the bucket goes
//! into debt, so the rate still holds on average.

use std::time::Duration;

use tokio::time::Instant;

/// One rate limit's state.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket: `rate` a second, bursts of `burst` worth of it (at least one token).
    pub fn new(rate: f64, burst: Duration, now: Instant) -> Self {
        let capacity = (rate * burst.as_secs_f64()).max(1.0);
        Self {
            rate,
            capacity,
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
    }

    /// Takes `n` tokens if they are there (or the bucket is full); otherwise takes nothing
    /// and says how long until they would be.
    pub fn try_take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= n || self.tokens >= self.capacity {
            self.tokens -= n;
            return Ok(());
        }
        let wanted = n.min(self.capacity) - self.tokens;
        Err(Duration::from_secs_f64(wanted / self.rate))
    }

    /// Takes `n` tokens whatever is there, and says how long the taker should wait for the
    /// debt to clear (zero if there was no debt).
    pub fn take(&mut self, n: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Whether it is full: an idle principal's bucket, which may be forgotten.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(10.0, SECOND, start);
        for _ in 0..10 {
            bucket.try_take(1.0, start).expect("the burst");
        }
        let wait = bucket.try_take(1.0, start).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(100));
        bucket
            .try_take(1.0, start + Duration::from_millis(100))
            .expect("one more after a tenth of a second");
        assert!(bucket.is_full(start + 2 * SECOND));
    }

    #[test]
    fn a_request_larger_than_the_capacity_passes_when_full_and_leaves_debt() {
        let start = Instant::now();
        let mut bucket = Bucket::new(100.0, SECOND, start);
        bucket.try_take(500.0, start).expect("full: let through");
        let wait = bucket.try_take(1.0, start).expect_err("in debt");
        assert_eq!(wait, Duration::from_millis(4010));
    }

    #[test]
    fn reads_take_and_wait_out_their_debt() {
        let start = Instant::now();
        let mut bucket = Bucket::new(1000.0, SECOND, start);
        assert_eq!(bucket.take(1000.0, start), Duration::ZERO);
        assert_eq!(bucket.take(500.0, start), Duration::from_millis(500));
    }
}
