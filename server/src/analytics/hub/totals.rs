//! The hub's state: every retained cell of R4 — one page in one window for one R2
//! partition — and the global totals made from them.
//!
//! Each cell holds the best record within the workers' committed offsets, and a newer one
//! that waits for the commit to reach it ([`Cell`]; the rule is in
//! [`committed`](crate::analytics::committed)). A partition the workers have no commit for
//! (a broker that keeps none) accepts records as they come
//! ([`WithoutCommit::AcceptAll`]); before the commits are first read, nothing counts. A
//! window's total is the sum over partitions. Pure: the task in [`super`] feeds it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use streamgate::time::millis_of_std;

use super::view::{Snapshot, WindowTotals};
use crate::analytics::committed::{Cell, CommittedOffsets, WithoutCommit};
use crate::analytics::record::StatsRecord;
use crate::analytics::window::WindowSpec;

/// Most pages the hub tracks; beyond this, new page names are not added to the page list
/// (their counts still show in the windows they appear in).
const MAX_PAGES: usize = 10_000;

/// What one R4 record says of its cell, besides its offset.
#[derive(Debug, Clone, Copy)]
struct Count {
    count: u64,
    is_final: bool,
}

/// One window's cells: its end, and page → R2 partition → cell.
type WindowCells = (i64, HashMap<String, HashMap<i32, Cell<Count>>>);

/// The hub's state: every retained cell.
#[derive(Debug)]
pub struct Totals {
    spec: WindowSpec,
    retention_ms: i64,
    /// Window start → (end, page → partition → cell).
    windows: BTreeMap<i64, WindowCells>,
    pages: Arc<BTreeSet<String>>,
    newest_end: i64,
    /// The workers' committed offsets; `None` until first read.
    committed: Option<CommittedOffsets>,
}

impl Totals {
    /// Empty state.
    pub fn new(spec: WindowSpec, retention: Duration) -> Self {
        Self {
            spec,
            retention_ms: millis_of_std(retention),
            windows: BTreeMap::new(),
            pages: Arc::new(BTreeSet::new()),
            newest_end: i64::MIN,
            committed: None,
        }
    }

    /// Takes the workers' committed offsets and accepts the records they now cover.
    pub fn set_committed(&mut self, committed: HashMap<i32, i64>) {
        let committed = CommittedOffsets::with(committed, WithoutCommit::AcceptAll);
        for (_, pages) in self.windows.values_mut() {
            for partitions in pages.values_mut() {
                for (partition, cell) in partitions.iter_mut() {
                    cell.recheck(|offset| committed.admits(*partition, offset));
                }
            }
        }
        self.committed = Some(committed);
    }

    /// Takes one R4 record.
    pub fn apply(&mut self, record: StatsRecord) {
        if record.window_end_ms <= self.newest_end.saturating_sub(self.retention_ms) {
            return;
        }
        self.newest_end = self.newest_end.max(record.window_end_ms);
        if !self.pages.contains(&record.page) && self.pages.len() < MAX_PAGES {
            Arc::make_mut(&mut self.pages).insert(record.page.clone());
        }
        let admissible = self
            .committed
            .as_ref()
            .is_some_and(|c| c.admits(record.partition, record.input_offset));
        let (_, pages) = self
            .windows
            .entry(record.window_start_ms)
            .or_insert_with(|| (record.window_end_ms, HashMap::new()));
        let count = Count {
            count: record.count,
            is_final: record.is_final,
        };
        pages
            .entry(record.page)
            .or_default()
            .entry(record.partition)
            .or_default()
            .offer(record.input_offset, count, admissible);
        // Forget what fell out of the retained history.
        let horizon = self.newest_end.saturating_sub(self.retention_ms);
        while let Some((&start, (end, _))) = self.windows.first_key_value() {
            if *end > horizon {
                break;
            }
            self.windows.remove(&start);
        }
    }

    /// The global totals at wall time `now_ms`.
    pub fn snapshot(&self, tick: u64, now_ms: i64) -> Snapshot {
        let windows = self
            .windows
            .iter()
            .filter_map(|(start, (end, pages))| {
                let (totals, all_final) = window_totals(pages);
                let grace_over = now_ms >= end.saturating_add(self.spec.grace_ms());
                (!totals.is_empty()).then_some((
                    *start,
                    WindowTotals {
                        end_ms: *end,
                        pages: totals,
                        is_final: all_final && grace_over,
                    },
                ))
            })
            .collect();
        Snapshot {
            tick,
            generated_at_ms: now_ms,
            windows,
            pages: self.pages.clone(),
        }
    }
}

/// One window's page totals (the accepted counts summed over partitions), and whether every
/// cell is final with nothing newer waiting.
fn window_totals(
    pages: &HashMap<String, HashMap<i32, Cell<Count>>>,
) -> (BTreeMap<String, u64>, bool) {
    let mut all_final = true;
    let totals = pages
        .iter()
        .filter_map(|(page, partitions)| {
            // Something newer waits for its commit: not final yet.
            all_final &= partitions.values().all(|c| !c.is_pending());
            let counts: Vec<Count> = partitions
                .values()
                .filter_map(|c| c.accepted().copied())
                .collect();
            all_final &= counts.iter().all(|c| c.is_final);
            (!counts.is_empty()).then(|| (page.clone(), counts.iter().map(|c| c.count).sum()))
        })
        .collect();
    (totals, all_final)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::analytics::hub) fn spec() -> WindowSpec {
        WindowSpec::tumbling(5_000, 1_000).expect("valid")
    }

    pub(in crate::analytics::hub) fn record(
        page: &str,
        start: i64,
        partition: i32,
        offset: i64,
        count: u64,
        fin: bool,
    ) -> StatsRecord {
        StatsRecord::new(
            page.into(),
            start,
            start + 5_000,
            partition,
            offset,
            count,
            fin,
        )
    }

    #[test]
    fn sums_partitions_and_keeps_the_latest_count_per_partition() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 10, 3, false));
        totals.apply(record("P1", 0, 1, 7, 2, false));
        totals.apply(record("P1", 0, 0, 12, 4, false));
        // A stale (lower offset) record never wins, whatever order it arrives in.
        totals.apply(record("P1", 0, 0, 11, 9, false));
        totals.apply(record("P2", 0, 1, 8, 1, false));
        let snapshot = totals.snapshot(1, 100_000);
        let window = &snapshot.windows[&0];
        assert_eq!(window.pages["P1"], 6);
        assert_eq!(window.pages["P2"], 1);
        assert!(!window.is_final);
        assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P1", "P2"]);
    }

    #[test]
    fn only_records_within_the_committed_offsets_count() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        // Before the commits are known, nothing shows.
        totals.apply(record("P1", 0, 0, 10, 3, false));
        assert!(totals.snapshot(1, 1_000).windows.is_empty());
        totals.set_committed(HashMap::from([(0, 10)]));
        assert_eq!(totals.snapshot(2, 1_000).windows[&0].pages["P1"], 3);
        // Beyond the commit (an aborted or unfinished transaction): waits, and keeps the
        // window from looking final.
        totals.apply(record("P1", 0, 0, 15, 9, true));
        let snapshot = totals.snapshot(3, 100_000);
        assert_eq!(snapshot.windows[&0].pages["P1"], 3);
        assert!(!snapshot.windows[&0].is_final);
        // The commit reaches it: it counts.
        totals.set_committed(HashMap::from([(0, 15)]));
        let snapshot = totals.snapshot(4, 100_000);
        assert_eq!(snapshot.windows[&0].pages["P1"], 9);
        assert!(snapshot.windows[&0].is_final);
    }

    #[test]
    fn a_partition_without_a_commit_counts_as_records_come() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::from([(0, 10)]));
        totals.apply(record("P1", 0, 0, 12, 3, false));
        totals.apply(record("P1", 0, 1, 40, 2, false));
        // Partition 0 waits for its commit; partition 1 has none and counts at once.
        assert_eq!(totals.snapshot(1, 1_000).windows[&0].pages["P1"], 2);
    }

    #[test]
    fn a_window_is_final_when_every_count_is_and_grace_is_over() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 10, 3, true));
        totals.apply(record("P2", 0, 1, 10, 3, false));
        assert!(!totals.snapshot(1, 100_000).windows[&0].is_final);
        totals.apply(record("P2", 0, 1, 11, 3, true));
        assert!(
            !totals.snapshot(1, 5_999).windows[&0].is_final,
            "grace not over"
        );
        assert!(totals.snapshot(1, 6_000).windows[&0].is_final);
    }

    #[test]
    fn old_windows_are_forgotten() {
        let mut totals = Totals::new(spec(), Duration::from_secs(10));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 1, 1, true));
        totals.apply(record("P1", 20_000, 0, 2, 1, false));
        let snapshot = totals.snapshot(1, 25_000);
        assert_eq!(
            snapshot.windows.keys().copied().collect::<Vec<_>>(),
            [20_000]
        );
        totals.apply(record("P1", 0, 0, 3, 5, true));
        assert!(!totals.snapshot(2, 25_000).windows.contains_key(&0));
    }
}
