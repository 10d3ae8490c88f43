//! When the worker writes a transaction: at every tick, and once per tick as soon as it has
//! caught up with a backlog.
//!
//! The tick (`--stats-tick`) bounds how stale R4 is and how many transactions the worker
//! writes. But a worker reading a backlog — after a restart, an outage of the broker, a
//! burst — would hold the counts of its last records back until the next tick, up to a
//! whole tick after it has read them. So when polls have returned records without a pause
//! for a while (a tenth of the tick) and then one comes back empty, the worker commits at
//! once. At most once per tick: a busy topic that pauses now and then would otherwise get a
//! transaction after every pause.
//!
//! Pure bookkeeping over the instants it is given, so that it is unit-tested here.

use std::time::{Duration, Instant};

/// The longest a poll waits when nothing is due sooner (shutdown and test hooks are checked
/// between polls).
const MAX_POLL_WAIT: Duration = Duration::from_millis(100);
/// While records keep coming, a poll that finds none for this long means the worker has
/// caught up.
const CAUGHT_UP_AFTER: Duration = Duration::from_millis(10);

/// Why a commit is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// The tick came.
    Tick,
    /// The worker caught up with a backlog.
    CaughtUp,
}

/// The worker's commit schedule; see the module docs.
#[derive(Debug)]
pub(super) struct Pace {
    tick: Duration,
    next_tick: Instant,
    /// Since when every poll has returned a record; `None` after one came back empty.
    busy_since: Option<Instant>,
    /// A caught-up commit was written since the last tick.
    caught_up: bool,
}

impl Pace {
    pub(super) fn new(tick: Duration, now: Instant) -> Self {
        Self {
            tick,
            next_tick: now + tick,
            busy_since: None,
            caught_up: false,
        }
    }

    /// How long the next poll may wait for a record.
    pub(super) fn wait(&self, now: Instant) -> Duration {
        let until_tick = self.next_tick.saturating_duration_since(now);
        if self.busy_since.is_some() && !self.caught_up {
            until_tick.min(CAUGHT_UP_AFTER)
        } else {
            until_tick.min(MAX_POLL_WAIT)
        }
    }

    /// Notes what a poll returned (`record`: it returned one); `pending`: records were taken
    /// since the last commit. Says whether a commit is due.
    pub(super) fn polled(&mut self, record: bool, pending: bool, now: Instant) -> Option<Due> {
        if record {
            self.busy_since.get_or_insert(now);
        }
        if now >= self.next_tick {
            return Some(Due::Tick);
        }
        if record {
            return None;
        }
        let backlog = self
            .busy_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.tick / 10);
        self.busy_since = None;
        (backlog && pending && !self.caught_up).then_some(Due::CaughtUp)
    }

    /// A commit was written (or was not needed) for `due`. A run of records that the
    /// commit interrupted goes on.
    pub(super) fn committed(&mut self, due: Due, now: Instant) {
        match due {
            Due::Tick => {
                self.next_tick = now + self.tick;
                self.caught_up = false;
            }
            Due::CaughtUp => self.caught_up = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Polls records every millisecond from `from` for `span`; returns the first commit due.
    fn stream(pace: &mut Pace, from: Instant, span: Duration) -> Option<(Due, Instant)> {
        let mut now = from;
        while now < from + span {
            if let Some(due) = pace.polled(true, true, now) {
                return Some((due, now));
            }
            now += ms(1);
        }
        None
    }

    #[test]
    fn a_backlog_read_to_its_end_commits_at_once() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        assert_eq!(stream(&mut pace, start, ms(400)), None);
        let end = start + ms(400);
        assert_eq!(pace.wait(end), CAUGHT_UP_AFTER);
        assert_eq!(pace.polled(false, true, end + ms(10)), Some(Due::CaughtUp));
    }

    #[test]
    fn a_backlog_across_a_tick_commits_at_both() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        assert_eq!(pace.polled(false, false, start + ms(100)), None);
        let from = start + ms(900);
        assert_eq!(
            stream(&mut pace, from, ms(200)),
            Some((Due::Tick, start + TICK))
        );
        pace.committed(Due::Tick, start + TICK);
        // The run of records goes on past the tick's commit: still a backlog at its end.
        assert_eq!(stream(&mut pace, start + TICK, ms(20)), None);
        let end = start + TICK + ms(30);
        assert_eq!(pace.polled(false, true, end), Some(Due::CaughtUp));
    }

    #[test]
    fn a_backlog_starts_with_the_record_the_tick_came_with() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        let tick = start + TICK;
        assert_eq!(pace.polled(true, true, tick), Some(Due::Tick));
        pace.committed(Due::Tick, tick);
        // Records for a tenth of the tick, counted from the one the tick came with.
        assert_eq!(stream(&mut pace, tick + ms(1), ms(99)), None);
        assert_eq!(
            pace.polled(false, true, tick + ms(100)),
            Some(Due::CaughtUp)
        );
    }

    #[test]
    fn only_one_caught_up_commit_per_tick() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        stream(&mut pace, start, ms(200));
        let at = start + ms(210);
        assert_eq!(pace.polled(false, true, at), Some(Due::CaughtUp));
        pace.committed(Due::CaughtUp, at);
        // Another burst of the same length, then a pause: it waits for the tick.
        assert_eq!(stream(&mut pace, at, ms(200)), None);
        assert_eq!(pace.wait(at + ms(200)), MAX_POLL_WAIT);
        assert_eq!(pace.polled(false, true, at + ms(210)), None);
        assert_eq!(pace.polled(false, true, start + TICK), Some(Due::Tick));
        pace.committed(Due::Tick, start + TICK);
        // The tick allows the next one.
        let next = start + TICK;
        assert_eq!(stream(&mut pace, next, ms(200)), None);
        assert_eq!(
            pace.polled(false, true, next + ms(210)),
            Some(Due::CaughtUp)
        );
    }

    #[test]
    fn a_trickle_waits_for_the_tick() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        // One record every 50 ms, each followed by an empty poll.
        let mut now = start;
        while now + ms(50) < start + TICK {
            now += ms(50);
            assert_eq!(pace.polled(true, true, now), None);
            assert_eq!(pace.wait(now), CAUGHT_UP_AFTER);
            assert_eq!(pace.polled(false, true, now + ms(10)), None);
        }
        assert_eq!(pace.polled(false, true, start + TICK), Some(Due::Tick));
    }

    #[test]
    fn a_short_burst_waits_for_the_tick() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        assert_eq!(stream(&mut pace, start + ms(300), ms(30)), None);
        assert_eq!(pace.polled(false, true, start + ms(340)), None);
    }

    #[test]
    fn nothing_to_commit_is_not_a_catch_up() {
        let start = Instant::now();
        let mut pace = Pace::new(TICK, start);
        stream(&mut pace, start, ms(400));
        assert_eq!(pace.polled(false, false, start + ms(410)), None);
        assert_eq!(pace.wait(start + ms(410)), MAX_POLL_WAIT);
    }

    #[test]
    fn polls_never_wait_past_the_tick() {
        let start = Instant::now();
        let pace = Pace::new(TICK, start);
        assert_eq!(pace.wait(start + ms(500)), MAX_POLL_WAIT);
        assert_eq!(pace.wait(start + ms(995)), ms(5));
        assert_eq!(pace.wait(start + ms(1500)), Duration::ZERO);
    }
}
