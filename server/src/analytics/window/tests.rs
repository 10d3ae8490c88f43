//! Unit tests of the windowing core.

use super::*;

const S: i64 = 1000;

fn tumbling() -> WindowSpec {
    WindowSpec::tumbling(5 * S, S).expect("valid")
}

fn drain(state: &mut PartitionWindows, wall: i64) -> Vec<WindowUpdate> {
    let mut out = Vec::new();
    state.drain_updates(wall, &mut out);
    out.sort_by(|a, b| (a.start_ms, &a.page).cmp(&(b.start_ms, &b.page)));
    out
}

fn update(page: &str, start: i64, count: u64, is_final: bool) -> WindowUpdate {
    WindowUpdate {
        page: page.into(),
        start_ms: start,
        end_ms: start + 5 * S,
        count,
        is_final,
    }
}

#[test]
fn windows_are_aligned_to_the_epoch() {
    let spec = tumbling();
    assert_eq!(spec.starts_containing(12_345).collect::<Vec<_>>(), [10_000]);
    assert_eq!(spec.starts_containing(10_000).collect::<Vec<_>>(), [10_000]);
    assert_eq!(spec.starts_containing(9_999).collect::<Vec<_>>(), [5_000]);
    assert_eq!(spec.starts_containing(-1).collect::<Vec<_>>(), [-5_000]);
    let hopping = WindowSpec::new(10 * S, 5 * S, 0).expect("valid");
    assert_eq!(
        hopping.starts_containing(12_345).collect::<Vec<_>>(),
        [5_000, 10_000]
    );
    assert_eq!(hopping.tile_start(12_345), 10_000);
}

#[test]
fn rejects_shapes_that_do_not_tile() {
    assert!(WindowSpec::new(10 * S, 3 * S, 0).is_err());
    assert!(WindowSpec::new(0, 0, 0).is_err());
    assert!(WindowSpec::new(S, 2 * S, 0).is_err());
    assert!(WindowSpec::tumbling(S, -1).is_err());
}

#[test]
fn counts_per_page_and_window_and_reports_changes_once() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    let wall = 0;
    assert_eq!(state.record(0, 1_000, "P1", 500, wall), Outcome::Counted);
    assert_eq!(state.record(1, 2_000, "P1", 500, wall), Outcome::Counted);
    assert_eq!(state.record(2, 3_000, "P2", 500, wall), Outcome::Counted);
    assert_eq!(state.record(3, 5_500, "P2", 500, wall), Outcome::Counted);
    assert_eq!(state.next_offset(), 4);
    assert_eq!(
        drain(&mut state, wall),
        [
            update("P1", 0, 2, false),
            update("P2", 0, 1, false),
            update("P2", 5_000, 1, false)
        ]
    );
    assert!(drain(&mut state, wall).is_empty(), "nothing changed since");
    state.record(4, 5_900, "P2", 500, wall);
    assert_eq!(drain(&mut state, wall), [update("P2", 5_000, 2, false)]);
}

#[test]
fn filter_keeps_durations_above_the_threshold_only() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    assert_eq!(state.record(0, 1_000, "P1", 100, 0), Outcome::Filtered);
    assert_eq!(state.record(1, 1_000, "P1", 101, 0), Outcome::Counted);
    assert_eq!(drain(&mut state, 0), [update("P1", 0, 1, false)]);
    assert_eq!(state.counters().filtered, 1);
}

#[test]
fn late_within_grace_counts_beyond_grace_is_dropped() {
    // Window [0, 5 s), grace 1 s: final once stream time reaches 6 s.
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    state.record(0, 1_000, "P1", 500, 0);
    state.record(1, 5_500, "P1", 500, 0); // time 5.5 s: [0,5) still open
    assert_eq!(state.record(2, 4_000, "P1", 500, 0), Outcome::Counted);
    assert_eq!(drain(&mut state, 0)[0], update("P1", 0, 2, false));
    state.record(3, 6_000, "P2", 500, 0); // time 6 s: [0,5) final
    assert_eq!(state.record(4, 4_500, "P1", 500, 0), Outcome::Late);
    assert_eq!(
        drain(&mut state, 0),
        [update("P1", 0, 2, true), update("P2", 5_000, 1, false)]
    );
    assert_eq!(state.counters().late, 1);
    assert_eq!(state.open_windows(), 1);
    // A late record never reopens a final window.
    assert_eq!(state.record(5, 100, "P1", 500, 0), Outcome::Late);
    assert!(drain(&mut state, 0).is_empty());
}

#[test]
fn stream_time_flows_with_the_wall_clock_so_quiet_windows_close() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    let wall = 1_000_000;
    state.record(0, 3_000, "Q", 500, wall);
    assert_eq!(drain(&mut state, wall), [update("Q", 0, 1, false)]);
    // No more records: 2.999 s of wall time later stream time is 5.999 s, still open.
    assert!(drain(&mut state, wall + 2_999).is_empty());
    assert_eq!(state.stream_time(wall + 2_999), Some(5_999));
    assert_eq!(drain(&mut state, wall + 3_000), [update("Q", 0, 1, true)]);
    assert_eq!(state.open_windows(), 0);
}

#[test]
fn older_records_do_not_move_time_back() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    state.record(0, 10_000, "P1", 500, 0);
    state.record(1, 9_000, "P1", 500, 100);
    assert_eq!(state.stream_time(100), Some(10_100));
}

#[test]
fn hopping_windows_count_a_record_in_each_window_it_falls_in() {
    let spec = WindowSpec::new(10 * S, 5 * S, 0).expect("valid");
    let mut state = PartitionWindows::new(spec, 0, 0);
    state.record(0, 12_000, "P1", 1, 0);
    let out = drain(&mut state, 0);
    assert_eq!(
        out.iter()
            .map(|u| (u.start_ms, u.count))
            .collect::<Vec<_>>(),
        [(5_000, 1), (10_000, 1)]
    );
    // Time 15 s closes [5, 15) only; a record at 14 s still counts in [10, 20).
    state.record(1, 15_000, "P1", 1, 0);
    assert_eq!(state.record(2, 14_000, "P1", 1, 0), Outcome::Counted);
    let out = drain(&mut state, 0);
    assert!(out.contains(&WindowUpdate {
        page: "P1".into(),
        start_ms: 5_000,
        end_ms: 15_000,
        count: 1,
        is_final: true
    }));
}

#[test]
fn restore_reopens_windows_and_keeps_closed_ones_closed() {
    let mut state = PartitionWindows::new(tumbling(), 100, 42);
    state.restore("P1", 0, 7, true, 0);
    state.restore("P1", 5_000, 3, false, 0);
    assert_eq!(state.next_offset(), 42);
    assert!(
        drain(&mut state, 0).is_empty(),
        "restored counts are not news"
    );
    // Stream time is at least 6 s (the final window's closing point): [0,5) stays closed.
    assert_eq!(state.record(42, 1_000, "P1", 500, 0), Outcome::Late);
    assert_eq!(state.record(43, 6_000, "P1", 500, 0), Outcome::Counted);
    assert_eq!(drain(&mut state, 0), [update("P1", 5_000, 4, false)]);
}

#[test]
fn malformed_records_move_offset_and_time_only() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    state.malformed(5, 8_000, 0);
    assert_eq!(state.next_offset(), 6);
    assert_eq!(state.counters().malformed, 1);
    assert_eq!(state.record(6, 1_000, "P1", 500, 0), Outcome::Late);
}

#[test]
fn a_record_from_the_far_future_neither_moves_time_nor_counts() {
    let spec = tumbling().with_limits(30 * S, 10_000);
    let mut state = PartitionWindows::new(spec, 100, 0);
    let wall = 1_000_000;
    let year_2100 = 4_102_444_800_000;
    for offset in 0..3 {
        assert_eq!(
            state.record(offset, year_2100, "P1", 500, wall),
            Outcome::Future
        );
    }
    state.malformed(3, year_2100, wall);
    assert_eq!(state.stream_time(wall), None, "stream time untouched");
    assert_eq!(state.next_offset(), 4, "the offsets move on");
    // The next normal event is not late, and one within the skew counts.
    assert_eq!(state.record(4, wall, "P1", 500, wall), Outcome::Counted);
    assert_eq!(
        state.record(5, wall + 29 * S, "P1", 500, wall),
        Outcome::Counted
    );
    assert_eq!(state.counters().future, 3);
    assert_eq!(state.counters().counted, 2);
    assert!(
        drain(&mut state, wall)
            .iter()
            .all(|u| u.start_ms < year_2100 / 2)
    );
}

#[test]
fn restored_windows_beyond_the_horizon_are_ignored() {
    let spec = tumbling().with_limits(30 * S, 10_000);
    let mut state = PartitionWindows::new(spec, 100, 0);
    let wall = 1_000_000;
    state.restore("P1", 4_102_444_800_000, 3, false, wall);
    state.restore("P1", 4_102_444_800_000, 3, true, wall);
    state.restore("P1", 1_234, 3, false, wall); // not a window start of this spec
    assert_eq!(state.stream_time(wall), None);
    assert_eq!(state.open_windows(), 0);
    assert_eq!(state.record(0, wall, "P1", 500, wall), Outcome::Counted);
}

#[test]
fn pages_past_the_limit_count_as_other() {
    let spec = tumbling().with_limits(30 * S, 3);
    let mut state = PartitionWindows::new(spec, 100, 0);
    for (offset, page) in ["A", "B", "C", "D", "E", "A", "D"].iter().enumerate() {
        assert_eq!(
            state.record(offset as i64, 1_000, page, 500, 0),
            Outcome::Counted
        );
    }
    // The next window has room again.
    assert_eq!(state.record(7, 5_500, "E", 500, 0), Outcome::Counted);
    assert_eq!(
        drain(&mut state, 0),
        [
            update(OTHER_PAGE, 0, 3, false),
            update("A", 0, 2, false),
            update("B", 0, 1, false),
            update("C", 0, 1, false),
            update("E", 5 * S, 1, false),
        ]
    );
}

#[test]
fn the_edges_of_time_have_no_window_outside_the_range() {
    let spec = tumbling();
    assert_eq!(spec.starts_containing(i64::MAX).count(), 0);
    assert_eq!(spec.starts_containing(i64::MIN).count(), 0);
    assert_eq!(spec.checked_tile_start(i64::MIN), None);
    assert_eq!(spec.tile_start(i64::MIN), i64::MIN);
    assert_eq!(spec.closes_at(i64::MAX), i64::MAX);
    let mut state = PartitionWindows::new(spec, 100, i64::MAX);
    assert_eq!(
        state.record(i64::MAX, i64::MAX, "P", 500, i64::MIN),
        Outcome::Late
    );
    assert_eq!(state.next_offset(), i64::MAX);
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    /// Any valid spec: size a multiple of advance, at most 1000 overlapping windows.
    fn spec() -> impl Strategy<Value = WindowSpec> {
        (
            1..=i64::MAX / 1000,
            prop_oneof![Just(1i64), 1..=1000i64],
            prop_oneof![Just(0i64), Just(i64::MAX), 0..=i64::MAX],
            prop_oneof![Just(0i64), Just(i64::MAX), 0..=i64::MAX],
            prop_oneof![Just(1usize), 1..=4usize, Just(usize::MAX)],
        )
            .prop_map(|(advance, n, grace, skew, pages)| {
                let size = advance.saturating_mul(n);
                let advance = if size % advance == 0 { advance } else { size };
                WindowSpec::new(size, advance, grace)
                    .expect("a valid spec")
                    .with_limits(skew, pages)
            })
    }

    /// Any i64, with the edges of the range and small values drawn often.
    fn time() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MIN + 1),
            Just(-1i64),
            Just(0i64),
            Just(i64::MAX - 1),
            Just(i64::MAX),
            -100_000i64..100_000,
            any::<i64>(),
        ]
    }

    fn check_window(spec: &WindowSpec, start: i64, end: i64) {
        assert_eq!(
            end.checked_sub(start),
            Some(spec.size_ms()),
            "end - start = size"
        );
        assert_eq!(start.rem_euclid(spec.advance_ms()), 0, "aligned start");
    }

    proptest! {
        #[test]
        fn windows_contain_their_timestamp_and_never_overflow(spec in spec(), ts in time()) {
            let starts: Vec<i64> = spec.starts_containing(ts).collect();
            prop_assert!(starts.len() as i64 <= spec.size_ms() / spec.advance_ms());
            prop_assert!(starts.windows(2).all(|w| w[0] < w[1]), "oldest first");
            for start in &starts {
                let end = spec.end_of(*start).expect("representable end");
                prop_assert!(*start <= ts && ts < end);
                check_window(&spec, *start, end);
                prop_assert!(spec.closes_at(*start) >= end);
            }
            // Away from the edges, every overlapping window is there.
            let margin = spec.size_ms().checked_mul(2);
            if margin.and_then(|m| ts.checked_sub(m)).and_then(|_| ts.checked_add(margin?)).is_some() {
                prop_assert_eq!(starts.len() as i64, spec.size_ms() / spec.advance_ms());
            }
            if let Some(tile) = spec.checked_tile_start(ts) {
                let end = spec.end_of(tile).expect("representable end");
                prop_assert!(tile <= ts && ts < end);
                prop_assert_eq!(tile.rem_euclid(spec.size_ms()), 0);
                prop_assert_eq!(spec.tile_start(ts), tile);
            }
            let _ = spec.tile_start(ts);
            let _ = spec.is_future(ts, ts);
        }

        #[test]
        fn any_input_keeps_every_window_in_range(
            spec in spec(),
            min_duration in time(),
            first_offset in time(),
            records in proptest::collection::vec(
                (time(), time(), time(), 0..6u8, any::<bool>(), any::<bool>()),
                1..40,
            ),
            restored in proptest::collection::vec((time(), any::<u64>(), any::<bool>(), time()), 0..8),
        ) {
            let mut state = PartitionWindows::new(spec, min_duration, first_offset);
            for (start, count, is_final, wall) in restored {
                state.restore("R", start, count, is_final, wall);
            }
            let mut out = Vec::new();
            for (offset, ts, wall, page, malformed, drain) in records {
                let page = format!("P{page}");
                if malformed {
                    state.malformed(offset, ts, wall);
                } else {
                    let outcome = state.record(offset, ts, &page, min_duration.saturating_add(1), wall);
                    if outcome == Outcome::Future {
                        prop_assert!(spec.is_future(ts, wall));
                    }
                }
                prop_assert_eq!(state.next_offset(), offset.saturating_add(1));
                let _ = state.stream_time(wall);
                if drain {
                    state.drain_updates(wall, &mut out);
                }
                // A window holds at most max_pages pages, OTHER_PAGE and the restored page.
                let cap = spec.max_pages().saturating_add(2);
                prop_assert!(state.open.values().all(|pages| pages.len() <= cap));
            }
            state.drain_updates(i64::MAX, &mut out);
            for update in &out {
                check_window(&spec, update.start_ms, update.end_ms);
                let _ = crate::analytics::record::StatsRecord::new(
                    update.page.clone(), update.start_ms, update.end_ms, 0, 0, update.count, update.is_final,
                );
            }
        }
    }
}
