//! When the hub reads the workers' committed offsets: at every tick, and soon after a
//! record arrives that waits for one.
//!
//! A worker writes its R4 records inside a transaction and commits the input offsets at its
//! end; the hub reads R4 uncommitted, so the records come first and wait (see
//! [`committed`](crate::analytics::committed)) until a read of the offsets admits them. With
//! reads at the ticks only, a count waited for the tick after its records arrived to be
//! read, and for the tick after that to be shown. So a record that waits opens an *episode*:
//! a read shortly after it (the worker's commit is a round trip or two behind its records),
//! then, while records still wait, reads at doubling gaps until the gap reaches half a tick,
//! where the tick's own reads take over. An episode costs at most a handful of reads, and
//! only a new arrival opens one: a record that waits for good (its transaction was aborted)
//! costs nothing after its episode.
//!
//! Pure bookkeeping over the instants it is given, so that it is unit-tested here.

use std::time::{Duration, Instant};

/// How long after the first waiting record of an episode its first read starts.
pub(super) const FIRST_GAP: Duration = Duration::from_millis(50);

/// The schedule of the reads between ticks; see the module docs.
#[derive(Debug)]
pub(super) struct Reads {
    /// Episodes end once the next gap would exceed this (half a tick).
    longest_gap: Duration,
    /// The gap before the scheduled read; `None` outside an episode.
    gap: Option<Duration>,
    /// When the next read of the episode is due.
    due: Option<Instant>,
}

impl Reads {
    pub(super) fn new(tick: Duration) -> Self {
        Self {
            longest_gap: tick / 2,
            gap: None,
            due: None,
        }
    }

    /// A record arrived that waits for the commit: a read is due soon, unless one already is.
    pub(super) fn waiting_arrived(&mut self, now: Instant) {
        if self.due.is_none() {
            let gap = FIRST_GAP.min(self.longest_gap);
            self.gap = Some(gap);
            self.due = Some(now + gap);
        }
    }

    /// When the next read between ticks is due, if one is.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A read started (the episode's or the tick's): it covers what was due.
    pub(super) fn started(&mut self) {
        self.due = None;
    }

    /// A read finished; `waiting`: records still wait for the commit. Within an episode,
    /// another read is due at twice the last gap, until the gap would pass half a tick.
    pub(super) fn finished(&mut self, waiting: bool, now: Instant) {
        if self.due.is_some() {
            return; // a record arrived meanwhile: its read is already scheduled
        }
        self.gap = match self.gap {
            Some(gap) if waiting && gap * 2 <= self.longest_gap => {
                self.due = Some(now + gap * 2);
                Some(gap * 2)
            }
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs an episode whose reads all find records still waiting; the gaps between them.
    fn gaps_while_waiting(reads: &mut Reads, from: Instant) -> Vec<Duration> {
        let mut gaps = Vec::new();
        let mut last = from;
        while let Some(due) = reads.due() {
            gaps.push(due - last);
            reads.started();
            reads.finished(true, due);
            last = due;
        }
        gaps
    }

    #[test]
    fn nothing_is_due_until_a_record_waits() {
        let mut reads = Reads::new(TICK);
        assert_eq!(reads.due(), None);
        reads.started();
        reads.finished(true, Instant::now());
        assert_eq!(reads.due(), None, "a tick's read alone opens no episode");
    }

    #[test]
    fn a_waiting_record_is_read_soon_and_an_admitted_one_ends_the_episode() {
        let start = Instant::now();
        let mut reads = Reads::new(TICK);
        reads.waiting_arrived(start);
        assert_eq!(reads.due(), Some(start + FIRST_GAP));
        // More records of the same commit do not push the read back.
        reads.waiting_arrived(start + ms(10));
        assert_eq!(reads.due(), Some(start + FIRST_GAP));
        reads.started();
        reads.finished(false, start + ms(52));
        assert_eq!(reads.due(), None);
    }

    #[test]
    fn reads_back_off_while_records_wait_and_stop_at_half_a_tick() {
        let start = Instant::now();
        let mut reads = Reads::new(TICK);
        reads.waiting_arrived(start);
        assert_eq!(
            gaps_while_waiting(&mut reads, start),
            [ms(50), ms(100), ms(200), ms(400)]
        );
        assert_eq!(reads.due(), None, "the ticks take over");
    }

    #[test]
    fn a_record_arriving_during_a_read_gets_a_read_of_its_own() {
        let start = Instant::now();
        let mut reads = Reads::new(TICK);
        reads.waiting_arrived(start);
        reads.started();
        reads.waiting_arrived(start + ms(60));
        reads.finished(true, start + ms(70));
        assert_eq!(reads.due(), Some(start + ms(60) + FIRST_GAP));
    }

    #[test]
    fn a_short_tick_bounds_the_first_gap() {
        let start = Instant::now();
        let mut reads = Reads::new(ms(20));
        reads.waiting_arrived(start);
        assert_eq!(gaps_while_waiting(&mut reads, start), [ms(10)]);
    }
}
