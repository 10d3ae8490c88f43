//! `LogThrottle`: log a recurring problem at most once per interval, with how many times it
//! happened meanwhile, so a broker outage or a flood of bad records cannot flood the log.

use std::time::Duration;

use tokio::time::Instant;

/// Counts occurrences and says when one may be logged.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    since_last: u64,
}

impl LogThrottle {
    /// At most one log line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            since_last: 0,
        }
    }

    /// Records one occurrence. Returns `Some(n)` when this one should be logged, `n` being
    /// the occurrences since the last logged one, this one included.
    pub fn hit(&mut self) -> Option<u64> {
        self.since_last += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn logs_the_first_then_once_per_interval_with_the_count() {
        let mut throttle = LogThrottle::new(Duration::from_secs(5));
        assert_eq!(throttle.hit(), Some(1));
        assert_eq!(throttle.hit(), None);
        assert_eq!(throttle.hit(), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(throttle.hit(), Some(3));
        assert_eq!(throttle.hit(), None);
    }
}
