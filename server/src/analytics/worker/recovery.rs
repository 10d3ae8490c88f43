//! Bounded restarts per input record: the decision, apart from any Kafka call, so that it is
//! unit-tested here.
//!
//! A run ends on the first Kafka error in a transaction, and the next run re-reads every
//! record since the last commit — so a record that makes its transaction fail (a broker that
//! refuses it, a limit of the broker that the worker does not know) would restart the worker
//! forever. A panic while counting a record would do the same. The supervisor therefore keeps
//! one [`Recovery`] across runs:
//!
//! 1. A failed transaction (or a panic) makes every partition it covered a *suspect*: the
//!    records below the offsets it tried to commit include the culprit. Each further failure
//!    covering a suspect counts against it; a commit past a suspect's offsets clears it.
//!    Failures that are not about records (starting a run, the restore, `begin_transaction`)
//!    change nothing.
//! 2. After [`FAILURES_BEFORE_ISOLATION`] failures of one suspect without its offset moving
//!    past it, the runs *isolate*: they commit after every input record, until every suspect
//!    is committed past. A transaction that then fails holds exactly one record, the culprit.
//! 3. The culprit is *poisoned*: the next run does not count it but puts it in the
//!    dead-letter topic, with the error as the reason, in a transaction of its own.
//! 4. If that transaction fails too (the dead letter itself is refused), the run after it
//!    passes over the record with an offset-only transaction, logged as an error and counted
//!    in `WorkerCounters::skipped`.
//!
//! So one record costs at most `FAILURES_BEFORE_ISOLATION + 2` restarts (plus one for each
//! other record of an isolated transaction that fails for a reason that is not about records;
//! a broker that is down fails the start of a run, which does not count). The price of
//! isolation is one transaction per record for the records since the last commit, once.

use std::collections::BTreeMap;

/// Failures of one suspect partition before runs commit one record per transaction.
pub(super) const FAILURES_BEFORE_ISOLATION: u32 = 3;

/// What the supervisor remembers of failed runs; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// Partition → the suspect records (below an offset) and how often they failed.
    suspects: BTreeMap<i32, Suspect>,
    /// The one record whose own transaction failed.
    poisoned: Option<Poisoned>,
    /// Input records taken since the last commit, and the last of them.
    taken_since_commit: u32,
    last_taken: Option<(i32, i64)>,
    /// The next offsets of the transaction being committed.
    attempt: Vec<(i32, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Suspect {
    /// The culprit is below this offset.
    below: i64,
    failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Poisoned {
    partition: i32,
    offset: i64,
    reason: String,
    dead_letter_failed: bool,
}

/// What a run does with one input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Treatment<'a> {
    /// Count it, as usual.
    Process,
    /// Its own transaction failed with this error: dead-letter it instead.
    DeadLetter(&'a str),
    /// Its dead letter failed too (this error): pass over it.
    Skip(&'a str),
}

impl Recovery {
    /// Whether runs commit after every input record now.
    pub(super) fn isolating(&self) -> bool {
        self.suspects
            .values()
            .any(|s| s.failures >= FAILURES_BEFORE_ISOLATION)
    }

    /// What to do with the record at `offset` of `partition`.
    pub(super) fn treatment(&self, partition: i32, offset: i64) -> Treatment<'_> {
        match &self.poisoned {
            Some(p) if p.partition == partition && p.offset == offset => {
                if p.dead_letter_failed {
                    Treatment::Skip(&p.reason)
                } else {
                    Treatment::DeadLetter(&p.reason)
                }
            }
            _ => Treatment::Process,
        }
    }

    /// A run took the record at `offset` of `partition` into its state (or its dead letters).
    pub(super) fn taken(&mut self, partition: i32, offset: i64) {
        self.taken_since_commit += 1;
        self.last_taken = Some((partition, offset));
    }

    /// Input records taken since the last commit.
    pub(super) fn taken_since_commit(&self) -> u32 {
        self.taken_since_commit
    }

    /// A transaction is about to commit these next offsets.
    pub(super) fn attempting(&mut self, offsets: impl IntoIterator<Item = (i32, i64)>) {
        self.attempt.clear();
        self.attempt.extend(offsets);
    }

    /// The transaction committed: suspects and the poisoned record it passed are cleared.
    pub(super) fn committed(&mut self) {
        for (partition, next) in self.attempt.drain(..) {
            if self
                .suspects
                .get(&partition)
                .is_some_and(|s| next >= s.below)
            {
                self.suspects.remove(&partition);
            }
            if self
                .poisoned
                .as_ref()
                .is_some_and(|p| p.partition == partition && next > p.offset)
            {
                self.poisoned = None;
            }
        }
        self.taken_since_commit = 0;
        self.last_taken = None;
    }

    /// A run ended in a failed transaction or a panic, with `reason`.
    pub(super) fn failed(&mut self, reason: &str) {
        match self.last_taken {
            Some((partition, offset)) if self.isolating() && self.taken_since_commit == 1 => {
                // The failed transaction held this one record.
                match &mut self.poisoned {
                    Some(p) if p.partition == partition && p.offset == offset => {
                        p.dead_letter_failed = true;
                        p.reason = reason.to_owned();
                    }
                    _ => {
                        self.poisoned = Some(Poisoned {
                            partition,
                            offset,
                            reason: reason.to_owned(),
                            dead_letter_failed: false,
                        });
                    }
                }
            }
            _ => {
                let taken = self
                    .last_taken
                    .filter(|_| self.taken_since_commit > 0)
                    .map(|(partition, offset)| (partition, offset.saturating_add(1)));
                let mut covered: BTreeMap<i32, i64> = BTreeMap::new();
                for (partition, next) in self.attempt.iter().copied().chain(taken) {
                    let below = covered.entry(partition).or_insert(next);
                    *below = (*below).max(next);
                }
                for (partition, next) in covered {
                    let suspect = self.suspects.entry(partition).or_insert(Suspect {
                        below: next,
                        failures: 0,
                    });
                    suspect.below = suspect.below.max(next);
                    suspect.failures += 1;
                }
            }
        }
        self.run_ended();
    }

    /// A run ended (for any reason): forget what it was doing, keep what failed.
    pub(super) fn run_ended(&mut self) {
        self.taken_since_commit = 0;
        self.last_taken = None;
        self.attempt.clear();
    }

    /// Forgets suspects of partitions this worker no longer has (their new owner's own
    /// recovery bounds them there).
    pub(super) fn retain_partitions(&mut self, mine: impl Fn(i32) -> bool) {
        self.suspects.retain(|partition, _| mine(*partition));
        if self.poisoned.as_ref().is_some_and(|p| !mine(p.partition)) {
            self.poisoned = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One run that takes records `from..to` of partition 0 in one transaction, which fails.
    fn failing_batch(recovery: &mut Recovery, from: i64, to: i64) {
        for offset in from..to {
            assert_eq!(recovery.treatment(0, offset), Treatment::Process);
            recovery.taken(0, offset);
        }
        recovery.attempting([(0, to)]);
        recovery.failed("Broker: Message size too large");
    }

    #[test]
    fn a_record_that_fails_its_transactions_is_isolated_then_dead_lettered_then_skipped() {
        let mut recovery = Recovery::default();
        // Records 10..20 since the last commit; record 14 makes every transaction fail.
        for _ in 0..FAILURES_BEFORE_ISOLATION {
            assert!(!recovery.isolating());
            failing_batch(&mut recovery, 10, 20);
        }
        assert!(
            recovery.isolating(),
            "after 3 failures: one record a commit"
        );
        // The isolated run: 10..14 commit one by one; 14's own transaction fails.
        for offset in 10..14 {
            recovery.taken(0, offset);
            recovery.attempting([(0, offset + 1)]);
            recovery.committed();
            assert!(recovery.isolating(), "still below the suspects' end");
        }
        recovery.taken(0, 14);
        recovery.attempting([(0, 15)]);
        recovery.failed("Broker: Message size too large");
        // The next run dead-letters 14 with that error as the reason.
        assert_eq!(recovery.treatment(0, 13), Treatment::Process);
        assert_eq!(
            recovery.treatment(0, 14),
            Treatment::DeadLetter("Broker: Message size too large")
        );
        // Its dead letter fails too: the run after that passes over it.
        recovery.taken(0, 14);
        recovery.attempting([(0, 15)]);
        recovery.failed("dead letter refused");
        assert_eq!(
            recovery.treatment(0, 14),
            Treatment::Skip("dead letter refused")
        );
        recovery.taken(0, 14);
        recovery.attempting([(0, 15)]);
        recovery.committed();
        assert_eq!(recovery.treatment(0, 14), Treatment::Process, "cleared");
        assert!(recovery.isolating(), "15..20 still one by one");
        for offset in 15..20 {
            recovery.taken(0, offset);
            recovery.attempting([(0, offset + 1)]);
            recovery.committed();
        }
        assert!(!recovery.isolating(), "past every suspect: batches again");
    }

    #[test]
    fn a_dead_letter_that_commits_ends_the_poison() {
        let mut recovery = Recovery::default();
        for _ in 0..FAILURES_BEFORE_ISOLATION {
            failing_batch(&mut recovery, 0, 1);
        }
        recovery.taken(0, 0);
        recovery.attempting([(0, 1)]);
        recovery.failed("refused");
        assert_eq!(recovery.treatment(0, 0), Treatment::DeadLetter("refused"));
        recovery.taken(0, 0);
        recovery.attempting([(0, 1)]);
        recovery.committed();
        assert_eq!(recovery.treatment(0, 0), Treatment::Process);
        assert!(!recovery.isolating());
    }

    #[test]
    fn progress_past_the_suspects_resets_the_count() {
        let mut recovery = Recovery::default();
        failing_batch(&mut recovery, 0, 10);
        failing_batch(&mut recovery, 0, 10);
        // A transaction commits past them: whatever failed was not about these records.
        recovery.attempting([(0, 10)]);
        recovery.committed();
        failing_batch(&mut recovery, 10, 20);
        failing_batch(&mut recovery, 10, 20);
        assert!(!recovery.isolating());
    }

    #[test]
    fn progress_on_another_partition_does_not_hide_a_stuck_one() {
        let mut recovery = Recovery::default();
        for round in 0..FAILURES_BEFORE_ISOLATION as i64 {
            // Partition 1 commits a little more each run; partition 0 never moves.
            recovery.attempting([(1, round + 1)]);
            recovery.committed();
            failing_batch(&mut recovery, 0, 5);
        }
        assert!(recovery.isolating());
    }

    #[test]
    fn failures_without_records_do_not_count() {
        let mut recovery = Recovery::default();
        for _ in 0..10 {
            // A transaction of closed windows only (no input taken, no offsets moved).
            recovery.attempting([]);
            recovery.failed("timed out");
            // A run that failed to start or restore.
            recovery.run_ended();
        }
        assert!(!recovery.isolating());
        assert_eq!(recovery.treatment(0, 0), Treatment::Process);
    }

    #[test]
    fn a_panic_while_counting_makes_the_record_a_suspect() {
        let mut recovery = Recovery::default();
        for _ in 0..FAILURES_BEFORE_ISOLATION {
            // Panicked while taking record 7, before any commit was attempted.
            recovery.taken(0, 7);
            recovery.failed("the worker panicked");
        }
        assert!(recovery.isolating());
        recovery.taken(0, 7);
        recovery.failed("the worker panicked");
        assert_eq!(
            recovery.treatment(0, 7),
            Treatment::DeadLetter("the worker panicked")
        );
    }

    #[test]
    fn suspects_of_partitions_given_away_are_forgotten() {
        let mut recovery = Recovery::default();
        for _ in 0..FAILURES_BEFORE_ISOLATION {
            failing_batch(&mut recovery, 0, 5);
        }
        recovery.retain_partitions(|p| p != 0);
        assert!(!recovery.isolating());
    }
}
