//! The hub's state: every retained cell of R4 — one page in one window for one R2
//! partition — and the global totals made from them.
//!
//! Each cell holds the best record within the workers' committed offsets, and a newer one
//! that waits for the commit to reach it ([`Cell`]; the rule is in
//! [`committed`](crate::analytics::committed)). A partition the workers have no commit for
//! (a broker that keeps none) accepts records as they come
//! ([`WithoutCommit::AcceptAll`]); before the commits are first read, nothing counts. A
//! window's total is the sum over partitions. Pure: the task in [`super`] feeds it.
//!
//! R4 is a topic anyone can write to, so nothing here trusts a record: the page list holds
//! exactly the pages of the retained windows (a burst of junk names leaves with its windows,
//! and no cap ever hides a new page), a record from far in the future is ignored (it would
//! otherwise move the retention horizon past every real record), and all arithmetic on
//! timestamps and counts saturates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use streamgate::time::millis_of_std;

use super::view::{Snapshot, WindowTotals};
use crate::analytics::committed::{Cell, CommittedOffsets, WithoutCommit};
use crate::analytics::record::StatsRecord;
use crate::analytics::window::WindowSpec;

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
    /// How far a window may start ahead of the wall clock and still be taken.
    max_ahead_ms: i64,
    /// Window start → (end, page → partition → cell).
    windows: BTreeMap<i64, WindowCells>,
    /// The pages of the retained windows, sorted (shared with the snapshots).
    pages: Arc<BTreeSet<String>>,
    /// Page → how many retained windows have a cell for it; a page leaves [`Self::pages`]
    /// with its last window.
    page_windows: HashMap<String, usize>,
    newest_end: i64,
    /// The workers' committed offsets; `None` until first read.
    committed: Option<CommittedOffsets>,
}

impl Totals {
    /// Empty state keeping `retention` of history; records of windows starting more than
    /// `max_ahead` after the wall clock are ignored.
    pub fn new(spec: WindowSpec, retention: Duration, max_ahead: Duration) -> Self {
        Self {
            spec,
            retention_ms: millis_of_std(retention),
            max_ahead_ms: millis_of_std(max_ahead),
            windows: BTreeMap::new(),
            pages: Arc::new(BTreeSet::new()),
            page_windows: HashMap::new(),
            newest_end: i64::MIN,
            committed: None,
        }
    }

    /// Takes the workers' committed offsets and accepts the records they now cover; whether
    /// any record still waits for the commit to reach it.
    pub fn set_committed(&mut self, committed: HashMap<i32, i64>) -> bool {
        let committed = CommittedOffsets::with(committed, WithoutCommit::AcceptAll);
        let mut waiting = false;
        for (_, pages) in self.windows.values_mut() {
            for partitions in pages.values_mut() {
                for (partition, cell) in partitions.iter_mut() {
                    cell.recheck(|offset| committed.admits(*partition, offset));
                    waiting |= cell.is_pending();
                }
            }
        }
        self.committed = Some(committed);
        waiting
    }

    #[cfg(test)]
    /// The pages currently tracked (those of the retained windows).
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Takes one R4 record, at wall time `now_ms`; whether it waits for the commit to reach
    /// it (it is kept, and counts once a read of the commits admits it).
    pub fn apply(&mut self, record: StatsRecord, now_ms: i64) -> bool {
        if record.window_end_ms <= self.horizon()
            || record.window_start_ms > now_ms.saturating_add(self.max_ahead_ms)
        {
            return false;
        }
        self.newest_end = self.newest_end.max(record.window_end_ms);
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
        if !pages.contains_key(&record.page) {
            let windows = self.page_windows.entry(record.page.clone()).or_default();
            *windows += 1;
            if *windows == 1 {
                Arc::make_mut(&mut self.pages).insert(record.page.clone());
            }
        }
        pages
            .entry(record.page)
            .or_default()
            .entry(record.partition)
            .or_default()
            .offer(record.input_offset, count, admissible);
        self.forget_old_windows();
        !admissible
    }

    /// Window ends at or before this are out of the retained history.
    fn horizon(&self) -> i64 {
        self.newest_end.saturating_sub(self.retention_ms)
    }

    /// Forgets the windows that fell out of the retained history, and the pages that were
    /// only in them.
    fn forget_old_windows(&mut self) {
        let horizon = self.horizon();
        while let Some((&start, (end, _))) = self.windows.first_key_value() {
            if *end > horizon {
                break;
            }
            let Some((_, pages)) = self.windows.remove(&start) else {
                break;
            };
            for page in pages.into_keys() {
                if let Some(windows) = self.page_windows.get_mut(&page) {
                    *windows = windows.saturating_sub(1);
                    if *windows == 0 {
                        self.page_windows.remove(&page);
                        Arc::make_mut(&mut self.pages).remove(&page);
                    }
                }
            }
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

/// One window's page totals (the accepted counts summed over partitions, saturating), and
/// whether every cell is final with nothing newer waiting.
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
            (!counts.is_empty()).then(|| {
                let sum = counts
                    .iter()
                    .fold(0u64, |sum, c| sum.saturating_add(c.count));
                (page.clone(), sum)
            })
        })
        .collect();
    (totals, all_final)
}

#[cfg(test)]
pub(super) mod tests;
