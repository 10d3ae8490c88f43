//! Unit tests of the hub's totals.

use super::*;

/// The wall clock the tests apply records at: after all their windows.
pub(in crate::analytics::hub) const NOW: i64 = 1_000_000;
/// How far ahead of the wall clock the tests accept windows.
pub(in crate::analytics::hub) const AHEAD: Duration = Duration::from_secs(60);

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
    let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
    totals.set_committed(HashMap::new());
    totals.apply(record("P1", 0, 0, 10, 3, false), NOW);
    totals.apply(record("P1", 0, 1, 7, 2, false), NOW);
    totals.apply(record("P1", 0, 0, 12, 4, false), NOW);
    // A stale (lower offset) record never wins, whatever order it arrives in.
    totals.apply(record("P1", 0, 0, 11, 9, false), NOW);
    totals.apply(record("P2", 0, 1, 8, 1, false), NOW);
    let snapshot = totals.snapshot(1, 100_000);
    let window = &snapshot.windows[&0];
    assert_eq!(window.pages["P1"], 6);
    assert_eq!(window.pages["P2"], 1);
    assert!(!window.is_final);
    assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P1", "P2"]);
}

#[test]
fn only_records_within_the_committed_offsets_count() {
    let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
    // Before the commits are known, nothing shows.
    assert!(totals.apply(record("P1", 0, 0, 10, 3, false), NOW), "waits");
    assert!(totals.snapshot(1, 1_000).windows.is_empty());
    assert!(
        !totals.set_committed(HashMap::from([(0, 10)])),
        "nothing waits"
    );
    assert_eq!(totals.snapshot(2, 1_000).windows[&0].pages["P1"], 3);
    // Beyond the commit (an aborted or unfinished transaction): waits, and keeps the
    // window from looking final.
    assert!(totals.apply(record("P1", 0, 0, 15, 9, true), NOW), "waits");
    assert!(
        totals.set_committed(HashMap::from([(0, 14)])),
        "still waits"
    );
    let snapshot = totals.snapshot(3, 100_000);
    assert_eq!(snapshot.windows[&0].pages["P1"], 3);
    assert!(!snapshot.windows[&0].is_final);
    // The commit reaches it: it counts.
    assert!(
        !totals.set_committed(HashMap::from([(0, 15)])),
        "nothing waits"
    );
    let snapshot = totals.snapshot(4, 100_000);
    assert_eq!(snapshot.windows[&0].pages["P1"], 9);
    assert!(snapshot.windows[&0].is_final);
}

#[test]
fn a_partition_without_a_commit_counts_as_records_come() {
    let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
    totals.set_committed(HashMap::from([(0, 10)]));
    assert!(totals.apply(record("P1", 0, 0, 12, 3, false), NOW), "waits");
    assert!(
        !totals.apply(record("P1", 0, 1, 40, 2, false), NOW),
        "counts"
    );
    // Partition 0 waits for its commit; partition 1 has none and counts at once.
    assert_eq!(totals.snapshot(1, 1_000).windows[&0].pages["P1"], 2);
}

#[test]
fn a_window_is_final_when_every_count_is_and_grace_is_over() {
    let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
    totals.set_committed(HashMap::new());
    totals.apply(record("P1", 0, 0, 10, 3, true), NOW);
    totals.apply(record("P2", 0, 1, 10, 3, false), NOW);
    assert!(!totals.snapshot(1, 100_000).windows[&0].is_final);
    totals.apply(record("P2", 0, 1, 11, 3, true), NOW);
    assert!(
        !totals.snapshot(1, 5_999).windows[&0].is_final,
        "grace not over"
    );
    assert!(totals.snapshot(1, 6_000).windows[&0].is_final);
}

#[test]
fn old_windows_are_forgotten() {
    let mut totals = Totals::new(spec(), Duration::from_secs(10), AHEAD);
    totals.set_committed(HashMap::new());
    totals.apply(record("P1", 0, 0, 1, 1, true), NOW);
    totals.apply(record("P1", 20_000, 0, 2, 1, false), NOW);
    let snapshot = totals.snapshot(1, 25_000);
    assert_eq!(
        snapshot.windows.keys().copied().collect::<Vec<_>>(),
        [20_000]
    );
    totals.apply(record("P1", 0, 0, 3, 5, true), NOW);
    assert!(!totals.snapshot(2, 25_000).windows.contains_key(&0));
}

#[test]
fn pages_not_seen_within_the_retention_are_forgotten() {
    let mut totals = Totals::new(spec(), Duration::from_secs(10), AHEAD);
    totals.set_committed(HashMap::new());
    // A burst of junk names in one window, then a real page later on.
    for i in 0..20_000 {
        totals.apply(record(&format!("junk-{i}"), 0, 0, i, 1, false), NOW);
    }
    totals.apply(record("P1", 5_000, 0, 20_000, 1, false), NOW);
    assert_eq!(totals.page_count(), 20_001, "no cap hides a page");
    // The junk's window falls out of the history: the junk goes, P1 (seen later) stays.
    totals.apply(record("P2", 10_000, 0, 20_001, 1, false), NOW);
    let snapshot = totals.snapshot(1, 15_000);
    assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P1", "P2"]);
    // P1's first window goes, but P1 was seen again in a newer one: it stays.
    totals.apply(record("P1", 15_000, 0, 20_002, 1, false), NOW);
    let snapshot = totals.snapshot(2, 20_000);
    assert_eq!(
        snapshot.windows.keys().copied().collect::<Vec<_>>(),
        [10_000, 15_000]
    );
    assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P1", "P2"]);
    // And leaves with its last window.
    totals.apply(record("P3", 25_000, 0, 20_003, 1, false), NOW);
    let snapshot = totals.snapshot(3, 30_000);
    assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P3"]);
}

#[test]
fn a_record_from_far_in_the_future_does_not_move_the_horizon() {
    let mut totals = Totals::new(spec(), Duration::from_secs(10), AHEAD);
    totals.set_committed(HashMap::new());
    totals.apply(record("junk", i64::MAX - 5_000, 0, 1, 1, false), NOW);
    totals.apply(record("P1", 0, 0, 2, 1, false), NOW);
    let snapshot = totals.snapshot(1, NOW);
    assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P1"]);
    assert_eq!(snapshot.windows[&0].pages["P1"], 1);
}

#[test]
fn sums_saturate() {
    let mut totals = Totals::new(spec(), Duration::from_secs(10), AHEAD);
    totals.set_committed(HashMap::new());
    totals.apply(record("P1", 0, 0, 1, u64::MAX, false), NOW);
    totals.apply(record("P1", 0, 1, 1, u64::MAX, false), NOW);
    assert_eq!(totals.snapshot(1, NOW).windows[&0].pages["P1"], u64::MAX);
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::analytics::hub::view::{current_window, rolling_counts};

    /// Any record the parser accepts (end after start, partition not negative), built
    /// without formatting its dates (those have their own limits).
    fn any_record() -> impl Strategy<Value = StatsRecord> {
        let edge = prop_oneof![
            Just(i64::MIN),
            Just(i64::MIN + 1),
            Just(-1i64),
            Just(0i64),
            Just(i64::MAX - 1),
            any::<i64>(),
            -100_000i64..100_000,
        ];
        let count = prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(0u64), any::<u64>()];
        (
            edge.clone(),
            prop_oneof![Just(1i64), Just(5_000i64), Just(i64::MAX), any::<i64>()],
            prop_oneof![Just(0i32), Just(1i32), Just(i32::MAX), 0i32..4],
            edge,
            count,
            any::<bool>(),
            0usize..4,
        )
            .prop_map(|(start, length, partition, offset, count, fin, page)| {
                let end = start.saturating_add(length.saturating_abs().max(1));
                let start = if end > start { start } else { end - 1 };
                StatsRecord {
                    page: format!("P{page}"),
                    window_start: String::new(),
                    window_end: String::new(),
                    window_start_ms: start,
                    window_end_ms: end,
                    partition,
                    input_offset: offset,
                    count,
                    is_final: fin,
                }
            })
    }

    fn any_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            any::<i64>(),
            -100_000i64..100_000
        ]
    }

    proptest! {
        #[test]
        fn no_record_clock_or_period_makes_the_hub_panic(
            records in proptest::collection::vec(any_record(), 1..40),
            committed in proptest::collection::hash_map(0i32..4, any_time(), 0..4),
            retention_ms in prop_oneof![Just(u64::MAX), Just(1u64), any::<u64>(), 1u64..100_000],
            ahead_ms in prop_oneof![Just(u64::MAX), Just(0u64), any::<u64>()],
            now in any_time(),
            rolling in prop_oneof![Just(i64::MAX), Just(1i64), Just(i64::MIN), any::<i64>()],
        ) {
            let mut totals = Totals::new(
                spec(),
                Duration::from_millis(retention_ms),
                Duration::from_millis(ahead_ms),
            );
            let half = records.len() / 2;
            for record in records.iter().take(half) {
                totals.apply(record.clone(), now);
            }
            totals.set_committed(committed);
            for record in records.iter().skip(half) {
                totals.apply(record.clone(), now);
            }
            let snapshot = totals.snapshot(u64::MAX, now);
            let _ = current_window(&snapshot, &spec(), now);
            let _ = rolling_counts(&snapshot, &spec(), now, rolling);
            for window in snapshot.windows.values() {
                for page in window.pages.keys() {
                    prop_assert!(snapshot.pages.contains(page), "a counted page is listed");
                }
            }
        }

        #[test]
        fn counts_near_u64_max_saturate_instead_of_overflowing(
            counts in proptest::collection::vec(
                prop_oneof![Just(u64::MAX), u64::MAX - 1_000..=u64::MAX, any::<u64>()],
                1..8,
            ),
        ) {
            let mut totals = Totals::new(spec(), Duration::from_secs(600), AHEAD);
            totals.set_committed(HashMap::new());
            for (partition, count) in counts.iter().enumerate() {
                totals.apply(record("P1", 0, partition as i32, 1, *count, false), NOW);
            }
            let expected = counts.iter().fold(0u64, |sum, c| sum.saturating_add(*c));
            let snapshot = totals.snapshot(1, 2_000);
            prop_assert_eq!(snapshot.windows[&0].pages["P1"], expected);
            let rolling = rolling_counts(&snapshot, &spec(), 2_000, 5_000);
            prop_assert_eq!(rolling["P1"], (expected as f64).round() as u64);
        }
    }
}
