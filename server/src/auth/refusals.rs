//! Refusals are logged (who, what, which resource) but throttled: a client retrying a
//! refused call in a loop must not flood the log or slow the server with it.

use std::sync::Mutex;
use std::time::Duration;

use crate::logs::LogThrottle;

/// At most one refusal line per this interval; it counts the ones not logged.
const EVERY: Duration = Duration::from_secs(1);

/// A throttle in front of the refusal log lines, shared by authentication and the
/// permission checks.
#[derive(Debug)]
pub struct RefusalLog {
    throttle: Mutex<LogThrottle>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self {
            throttle: Mutex::new(LogThrottle::new(EVERY)),
        }
    }
}

impl RefusalLog {
    /// Calls `log` with the refusals since the last line (this one included), unless a
    /// line went out less than a second ago.
    pub fn record(&self, log: impl FnOnce(u64)) {
        // A poisoned lock only means a panic elsewhere while counting: keep counting.
        let hit = self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit();
        if let Some(refusals) = hit {
            log(refusals);
        }
    }
}
