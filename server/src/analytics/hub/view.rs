//! What a watcher sees: the [`Snapshot`] of every retained window's global totals, and the
//! two views WatchPageStats makes of it — the live window ([`current_window`]) and the
//! rolling counts over a recent period ([`rolling_counts`]). Pure functions of a snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::analytics::window::WindowSpec;

/// The global counts of one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowTotals {
    /// Window end, epoch ms (exclusive).
    pub end_ms: i64,
    /// Page → count, summed over R2 partitions.
    pub pages: BTreeMap<String, u64>,
    /// Every count of the window is final and its grace period is over.
    pub is_final: bool,
}

/// What every watcher sees at one tick.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Tick number; a watcher that sees tick 7 after tick 4 skipped 2.
    pub tick: u64,
    /// Wall time of the snapshot, epoch ms.
    pub generated_at_ms: i64,
    /// Window start → totals, for the retained windows.
    pub windows: BTreeMap<i64, WindowTotals>,
    /// Every page seen, sorted.
    pub pages: Arc<BTreeSet<String>>,
}

/// The start of the tile (aligned window of `size`) containing `ts`, for any `ts`: the
/// tile of a timestamp near `i64::MIN` whose start is not representable is the next one.
fn tile_start(ts: i64, size: i64) -> i64 {
    let size = size.max(1);
    let into = ts.rem_euclid(size);
    ts.checked_sub(into).unwrap_or_else(|| ts + (size - into))
}

/// The window a live view shows at `now_ms`: the one containing now, unless the data is
/// all older than that (a replay, or a stopped source), then the newest window with data.
pub fn current_window(snapshot: &Snapshot, spec: &WindowSpec, now_ms: i64) -> (i64, i64) {
    let here = tile_start(now_ms, spec.size_ms());
    match snapshot.windows.iter().next_back() {
        Some((start, totals))
            if totals
                .end_ms
                .saturating_add(spec.grace_ms())
                .saturating_add(spec.size_ms())
                < now_ms =>
        {
            (*start, totals.end_ms)
        }
        _ => (here, here.saturating_add(spec.size_ms())),
    }
}

/// Each page's count over `[now - rolling, now]`: whole windows inside the period count in
/// full; the one cut by the period's start counts pro rata (counts are per window, so this
/// is the finest the data allows). Tumbling-aligned windows only, so nothing counts twice.
/// Saturates: no timestamp or count makes it overflow.
pub fn rolling_counts(
    snapshot: &Snapshot,
    spec: &WindowSpec,
    now_ms: i64,
    rolling_ms: i64,
) -> HashMap<String, u64> {
    let size = spec.size_ms();
    let from = now_ms.saturating_sub(rolling_ms.max(0));
    let mut out: HashMap<String, f64> = HashMap::new();
    let first = tile_start(from, size);
    if first > now_ms {
        return HashMap::new();
    }
    for (start, totals) in snapshot.windows.range(first..=now_ms) {
        if start.rem_euclid(size) != 0 || totals.end_ms.checked_sub(*start) != Some(size) {
            continue;
        }
        // The current window's counts cover [start, now] only.
        let covered_end = totals.end_ms.min(now_ms);
        let (Some(span), Some(overlap)) = (
            covered_end.checked_sub(*start),
            covered_end.checked_sub((*start).max(from)),
        ) else {
            continue;
        };
        if span <= 0 || overlap <= 0 {
            continue;
        }
        let fraction = overlap as f64 / span as f64;
        for (page, count) in &totals.pages {
            *out.entry(page.clone()).or_default() += *count as f64 * fraction;
        }
    }
    // `as` saturates: a sum beyond u64::MAX is u64::MAX.
    out.into_iter()
        .map(|(page, value)| (page, value.round() as u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analytics::hub::totals::Totals;
    use crate::analytics::hub::totals::tests::{AHEAD, NOW, record, spec};

    #[test]
    fn rolling_count_pro_rates_the_window_cut_by_the_period() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 1, 10, true), NOW);
        totals.apply(record("P1", 5_000, 0, 2, 4, false), NOW);
        let snapshot = totals.snapshot(1, 7_000);
        // [2 s, 7 s]: 3/5 of the first window (6) + the current window so far (4).
        assert_eq!(rolling_counts(&snapshot, &spec(), 7_000, 5_000)["P1"], 10);
        // [6 s, 7 s]: half of what the current window counted over its 2 s.
        assert_eq!(rolling_counts(&snapshot, &spec(), 7_000, 1_000)["P1"], 2);
        assert_eq!(rolling_counts(&snapshot, &spec(), 7_000, 10_000)["P1"], 14);
    }

    #[test]
    fn the_live_window_is_now_unless_all_data_is_old() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 10_000, 0, 1, 1, false), NOW);
        let snapshot = totals.snapshot(1, 12_000);
        assert_eq!(current_window(&snapshot, &spec(), 12_000), (10_000, 15_000));
        assert_eq!(current_window(&snapshot, &spec(), 16_000), (15_000, 20_000));
        assert_eq!(
            current_window(&snapshot, &spec(), 100_000),
            (10_000, 15_000)
        );
    }
}
