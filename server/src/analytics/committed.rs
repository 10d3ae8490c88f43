//! The rule "the best R4 record within the committed offsets", written once for its two
//! readers: the worker's restore and the stats hub.
//!
//! An R4 record says "every R2 record of `partition` below `input_offset` is counted". The
//! worker writes it in the same transaction as the group's offsets, so a record is real
//! exactly when the group's committed offset of its R2 partition has reached its
//! `input_offset`: a record of an aborted transaction, or of a worker that died before
//! committing, carries an offset beyond the commit. Both test brokers show such records
//! even to `read_committed` readers, so the isolation level cannot decide; this rule does.
//!
//! - [`CommittedOffsets::admits`]: whether a record counts, given the commits.
//! - [`supersedes`]: among the admissible records of one cell (`page`, window, R2
//!   partition) the highest `input_offset` wins; a lower one never replaces a higher one,
//!   and on a tie the later arrival wins (the two carry the same count).
//! - [`BestRecords`]: the restore's use — one pass over R4, the best record per key.
//! - [`Cell`]: the hub's use — the best admissible record of a cell, and the best one
//!   still waiting for the commit to reach it.
//!
//! The two readers differ in one thing, made explicit by [`WithoutCommit`]: what a partition
//! without a committed offset admits. The restore treats it as committed at 0 (the group
//! starts at the beginning of the partition, so nothing written for it counts yet); the hub
//! accepts its records as they come (a broker that keeps no commit for it would otherwise
//! never show its counts).
//!
//! Pure: no Kafka here, so every case is unit-tested without a broker.

use std::collections::HashMap;

use super::record::StatsRecord;

/// What a partition without a committed offset admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutCommit {
    /// As if committed at offset 0: the group starts at the beginning of the partition
    /// (the restore).
    FromStart,
    /// Everything: records count as they come (the hub).
    AcceptAll,
}

/// The workers' group's committed offsets, per R2 partition, and what they admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffsets {
    offsets: HashMap<i32, i64>,
    without_commit: WithoutCommit,
}

impl CommittedOffsets {
    /// No commits yet.
    pub fn new(without_commit: WithoutCommit) -> Self {
        Self::with(HashMap::new(), without_commit)
    }

    /// The given commits, partition → committed offset.
    pub fn with(offsets: HashMap<i32, i64>, without_commit: WithoutCommit) -> Self {
        Self {
            offsets,
            without_commit,
        }
    }

    /// Records that `partition` is committed at `offset`.
    pub fn insert(&mut self, partition: i32, offset: i64) {
        self.offsets.insert(partition, offset);
    }

    /// Forgets every commit.
    pub fn clear(&mut self) {
        self.offsets.clear();
    }

    /// The committed offset of `partition`, if it has one.
    pub fn get(&self, partition: i32) -> Option<i64> {
        self.offsets.get(&partition).copied()
    }

    /// The highest `input_offset` of `partition` that counts; `None` when every one does.
    pub fn limit(&self, partition: i32) -> Option<i64> {
        match (self.get(partition), self.without_commit) {
            (Some(offset), _) => Some(offset),
            (None, WithoutCommit::FromStart) => Some(0),
            (None, WithoutCommit::AcceptAll) => None,
        }
    }

    /// Whether a record of `partition` complete up to `input_offset` counts: the commit of
    /// its partition has reached it.
    pub fn admits(&self, partition: i32, input_offset: i64) -> bool {
        self.limit(partition)
            .is_none_or(|limit| input_offset <= limit)
    }
}

/// Whether a record complete up to `candidate` replaces the one held (complete up to
/// `held`) as the best of its cell: the higher `input_offset` wins, a tie goes to the
/// newcomer. Only ever compare records that are both admissible, or both not.
pub fn supersedes(candidate: i64, held: Option<i64>) -> bool {
    held.is_none_or(|held| held <= candidate)
}

/// The restore's pass over R4: per record key, the best admissible record.
#[derive(Debug)]
pub struct BestRecords {
    committed: CommittedOffsets,
    best: HashMap<String, StatsRecord>,
}

impl BestRecords {
    /// Nothing read yet; `committed` decides what counts.
    pub fn new(committed: CommittedOffsets) -> Self {
        Self {
            committed,
            best: HashMap::new(),
        }
    }

    /// Takes one record; whether it is now the best of its key.
    pub fn offer(&mut self, record: StatsRecord) -> bool {
        if !self.committed.admits(record.partition, record.input_offset) {
            // Written by a transaction that did not commit with its offsets.
            return false;
        }
        let key = record.key();
        let held = self.best.get(&key).map(|b| b.input_offset);
        if !supersedes(record.input_offset, held) {
            return false;
        }
        self.best.insert(key, record);
        true
    }

    /// The best records of `partition`.
    pub fn of_partition(&self, partition: i32) -> impl Iterator<Item = &StatsRecord> {
        self.best.values().filter(move |r| r.partition == partition)
    }
}

/// The hub's view of one cell while the commit moves: the best admissible record (what
/// counts) and the best one that is not admissible yet (what waits).
#[derive(Debug, Clone, Copy)]
pub struct Cell<T> {
    accepted: Option<Held<T>>,
    pending: Option<Held<T>>,
}

#[derive(Debug, Clone, Copy)]
struct Held<T> {
    input_offset: i64,
    value: T,
}

impl<T> Default for Cell<T> {
    fn default() -> Self {
        Self {
            accepted: None,
            pending: None,
        }
    }
}

impl<T> Cell<T> {
    /// Takes a record complete up to `input_offset`; `admissible` is the rule's verdict on
    /// it now. It replaces the held one of its kind unless that one is higher.
    pub fn offer(&mut self, input_offset: i64, value: T, admissible: bool) {
        let slot = if admissible {
            &mut self.accepted
        } else {
            &mut self.pending
        };
        if supersedes(input_offset, slot.as_ref().map(|h| h.input_offset)) {
            *slot = Some(Held {
                input_offset,
                value,
            });
        }
    }

    /// After the commits moved: the waiting record counts if `admits` its offset now (and
    /// replaces the accepted one unless that one is higher); either way it stops waiting.
    pub fn recheck(&mut self, admits: impl FnOnce(i64) -> bool) {
        let Some(pending) = self.pending.take_if(|p| admits(p.input_offset)) else {
            return;
        };
        if supersedes(
            pending.input_offset,
            self.accepted.as_ref().map(|a| a.input_offset),
        ) {
            self.accepted = Some(pending);
        }
    }

    /// The record that counts, if any.
    pub fn accepted(&self) -> Option<&T> {
        self.accepted.as_ref().map(|h| &h.value)
    }

    /// A record waits for the commit to reach it.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(page: &str, partition: i32, input_offset: i64, count: u64) -> StatsRecord {
        StatsRecord::new(page.into(), 0, 5_000, partition, input_offset, count, false)
    }

    fn counts(best: &BestRecords, partition: i32) -> Vec<(String, u64)> {
        let mut out: Vec<_> = best
            .of_partition(partition)
            .map(|r| (r.page.clone(), r.count))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_record_counts_once_the_commit_reaches_its_offset() {
        let committed = CommittedOffsets::with(HashMap::from([(0, 10)]), WithoutCommit::FromStart);
        assert!(committed.admits(0, 9));
        assert!(committed.admits(0, 10), "equal to the commit: counts");
        assert!(!committed.admits(0, 11), "beyond the commit: does not");
        assert_eq!(committed.get(0), Some(10));
        assert_eq!(committed.limit(0), Some(10));
    }

    #[test]
    fn a_partition_without_a_commit_is_read_from_its_start_or_unchecked() {
        let restore = CommittedOffsets::new(WithoutCommit::FromStart);
        assert_eq!(restore.get(3), None);
        assert_eq!(restore.limit(3), Some(0));
        assert!(restore.admits(3, 0));
        assert!(!restore.admits(3, 1));

        let hub = CommittedOffsets::with(HashMap::from([(0, 5)]), WithoutCommit::AcceptAll);
        assert_eq!(hub.limit(3), None);
        assert!(hub.admits(3, i64::MAX));
        assert!(
            !hub.admits(0, 6),
            "a partition with a commit is still checked"
        );
    }

    #[test]
    fn the_highest_offset_wins_and_a_tie_goes_to_the_newcomer() {
        assert!(supersedes(5, None));
        assert!(supersedes(6, Some(5)));
        assert!(supersedes(5, Some(5)));
        assert!(!supersedes(4, Some(5)));
    }

    #[test]
    fn the_restore_keeps_the_best_admissible_record_whatever_the_order() {
        let committed =
            CommittedOffsets::with(HashMap::from([(0, 20), (1, 7)]), WithoutCommit::FromStart);
        let records = [
            record("P1", 0, 10, 3),
            record("P1", 0, 20, 5),
            // Beyond the commit: an aborted or unfinished transaction.
            record("P1", 0, 25, 9),
            record("P1", 0, 15, 4),
            record("P2", 1, 7, 2),
            record("P2", 1, 8, 6),
            // No commit for partition 2: nothing written for it counts yet.
            record("P3", 2, 4, 1),
        ];
        let expected_0 = vec![("P1".to_string(), 5)];
        let expected_1 = vec![("P2".to_string(), 2)];
        // Every rotation and the reverse: the outcome does not depend on the order.
        for shift in 0..records.len() {
            let mut order = records.to_vec();
            order.rotate_left(shift);
            for order in [order.clone(), order.into_iter().rev().collect()] {
                let mut best = BestRecords::new(committed.clone());
                for r in order {
                    best.offer(r);
                }
                assert_eq!(counts(&best, 0), expected_0);
                assert_eq!(counts(&best, 1), expected_1);
                assert!(counts(&best, 2).is_empty());
            }
        }
    }

    #[test]
    fn the_restore_takes_the_later_of_two_records_with_the_same_offset() {
        let committed = CommittedOffsets::with(HashMap::from([(0, 10)]), WithoutCommit::FromStart);
        let mut best = BestRecords::new(committed);
        assert!(best.offer(record("P1", 0, 10, 3)));
        assert!(best.offer(record("P1", 0, 10, 4)));
        assert!(!best.offer(record("P1", 0, 9, 8)));
        assert!(!best.offer(record("P1", 0, 11, 8)));
        assert_eq!(counts(&best, 0), [("P1".to_string(), 4)]);
    }

    #[test]
    fn a_cell_accepts_admissible_records_and_holds_the_others_back() {
        let mut cell = Cell::default();
        cell.offer(10, "a", true);
        cell.offer(15, "b", false);
        assert_eq!(cell.accepted(), Some(&"a"));
        assert!(cell.is_pending());
        // A lower record never replaces a higher one, admissible or not.
        cell.offer(9, "c", true);
        cell.offer(12, "d", false);
        assert_eq!(cell.accepted(), Some(&"a"));
        // The commit does not reach the waiting one yet: it keeps waiting.
        cell.recheck(|offset| offset <= 12);
        assert!(cell.is_pending());
        assert_eq!(cell.accepted(), Some(&"a"));
        cell.recheck(|offset| offset <= 15);
        assert!(!cell.is_pending());
        assert_eq!(cell.accepted(), Some(&"b"));
    }

    #[test]
    fn a_waiting_record_below_the_accepted_one_is_dropped_when_the_commit_passes_it() {
        let mut cell = Cell::default();
        cell.offer(12, "waits", false);
        cell.offer(20, "newer", true);
        cell.recheck(|offset| offset <= 20);
        assert!(!cell.is_pending());
        assert_eq!(cell.accepted(), Some(&"newer"));
    }

    #[test]
    fn a_cell_takes_the_later_of_two_records_with_the_same_offset() {
        let mut cell = Cell::default();
        cell.offer(10, 1, true);
        cell.offer(10, 2, true);
        assert_eq!(cell.accepted(), Some(&2));
        cell.offer(10, 3, false);
        cell.recheck(|_| true);
        assert_eq!(cell.accepted(), Some(&3));
    }
}
